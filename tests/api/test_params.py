"""Every number a client sends is bounded: out of range is a 400 with the envelope, never a 500."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api

HUGE = 100_000_000_000_000_000_000  # past SQLite's and PostgreSQL's 64-bit integers


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/images", "/v1/batches"])
@pytest.mark.parametrize("param", ["offset", "limit"])
def test_huge_paging_numbers_are_a_400_naming_the_parameter(api: Api, path: str, param: str) -> None:
    response = api.client.get(path, params={param: HUGE}, headers=api.as_user("bob"))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["param"] == param
    assert param in error["message"]


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/images", "/v1/batches"])
def test_the_largest_offset_allowed_answers_an_empty_page(api: Api, path: str) -> None:
    response = api.client.get(path, params={"offset": 1_000_000_000}, headers=api.as_user("bob"))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/jobs", {"prompt": "x", "width": HUGE}, "width"),
        ("/v1/jobs", {"prompt": "x", "height": -HUGE}, "height"),
        ("/v1/batches", {"count": 1, "idea_seed": HUGE}, "idea_seed"),
        ("/v1/prompts/ideas", {"count": 1, "seed": HUGE}, "seed"),
    ],
)
def test_huge_numbers_in_bodies_are_refused(api: Api, path: str, body: dict[str, object], param: str) -> None:
    response = api.client.post(path, json=body, headers=api.as_user("bob"))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
