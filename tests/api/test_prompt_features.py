"""Prompt weights, wildcards and embeddings over the jobs API."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api

TXT2IMG = {"steps": 1, "seed": 3, "width": 32, "height": 32}


def test_a_wildcard_job_makes_an_image_per_expanded_prompt(api: Api) -> None:
    headers = api.as_user("bob")
    response = api.client.post("/v1/jobs", json={"prompt": "a {red|blue} (fox:1.2)", "combinatorial": True,
                                                 **TXT2IMG}, headers=headers)  # fmt: skip
    assert response.status_code == 202, response.text
    job = api.wait(response.json()["id"], "bob")
    assert job["status"] == "succeeded", job
    prompts = set()
    for image_id in job["result_image_ids"]:
        metadata = api.client.get(f"/v1/images/{image_id}/metadata", headers=headers)
        assert metadata.status_code == 200, metadata.text
        prompts.add(metadata.json()["parameters"]["request"]["prompt"])
    assert prompts == {"a red (fox:1.2)", "a blue (fox:1.2)"}


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"prompt": "a (red fox"}, "prompt", "unbalanced"),
        ({"prompt": "x", "negative_prompt": "blurry]"}, "negative_prompt", "unbalanced"),
        ({"prompt": "a __unicorns__"}, "prompt", "no wildcard file"),
        ({"prompt": "x", "embeddings": ["/srv/embeddings/easynegative.safetensors"]}, "embeddings", "not a model"),
        ({"prompt": "x", "embeddings": ["owner/repo/easynegative.pt"]}, "embeddings", "not a model"),
    ],
)
def test_bad_prompts_and_embeddings_are_4xx_and_not_stored(
    api: Api, body: dict[str, object], param: str, fragment: str
) -> None:
    headers = api.as_user("carol")
    before = api.client.get("/v1/jobs", headers=headers).json()["total"]
    response = api.client.post("/v1/jobs", json={**TXT2IMG, **body}, headers=headers)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["param"] == param, error
    assert fragment in error["message"], error
    assert api.client.get("/v1/jobs", headers=headers).json()["total"] == before
