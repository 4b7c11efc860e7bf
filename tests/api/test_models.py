"""The model registry over HTTP: users list, admins import and delete; names work in jobs."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import Api


def test_registry_is_admin_managed_and_usable_by_name(api: Api, tiny_models: dict[str, Path]) -> None:
    admin, user = api.as_user("alice"), api.as_user("bob")
    body = {"path": str(tiny_models["txt2img"]), "name": "house-style"}
    assert api.client.post("/v1/models/import", json=body, headers=user).status_code == 403
    created = api.client.post("/v1/models/import", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["architecture"] == "sd"
    names = [model["name"] for model in api.client.get("/v1/models", headers=user).json()]
    assert "house-style" in names
    job = api.client.post("/v1/jobs", json={"prompt": "x", "model": "house-style", "steps": 2, "width": 64,
                                            "height": 64}, headers=user).json()  # fmt: skip
    assert api.wait(job["id"], "bob")["status"] == "succeeded"
    assert api.client.delete("/v1/models/house-style", headers=user).status_code == 403  # not the owner
    assert api.client.delete("/v1/models/house-style", headers=admin).status_code == 204
    assert api.client.get("/v1/models/house-style", headers=user).status_code == 404
    gone = api.client.post("/v1/jobs", json={"prompt": "x", "model": "house-style"}, headers=user)
    assert gone.status_code == 400


def test_a_registered_lora_name_is_a_model_in_jobs_and_the_openai_route(api: Api, tiny_models: dict[str, Path]) -> None:
    admin, user = api.as_user("alice"), api.as_user("bob")
    body = {"path": str(tiny_models["lora"]), "name": "dogs", "base_model": str(tiny_models["txt2img"])}
    created = api.client.post("/v1/models/import", json=body, headers=admin)
    assert created.status_code == 201, created.text
    job = api.client.post("/v1/jobs", json={"prompt": "a dog", "model": "dogs", "steps": 2, "width": 32,
                                            "height": 32}, headers=user)  # fmt: skip
    assert job.status_code == 202, job.text
    assert job.json()["request"]["model"] == str(tiny_models["txt2img"])
    assert [lora["ref"] for lora in job.json()["request"]["loras"]] == ["dogs"]
    assert api.wait(job.json()["id"], "bob")["status"] == "succeeded"
    openai = api.client.post("/v1/images/generations", json={"prompt": "a dog", "model": "dogs", "size": "32x32"},
                             headers=user)  # fmt: skip
    assert openai.status_code == 200, openai.text
    assert api.client.delete("/v1/models/dogs", headers=admin).status_code == 204


def test_bad_imports_are_4xx(api: Api, tmp_path: Path) -> None:
    admin = api.as_user("alice")
    fake = tmp_path / "fake.safetensors"
    fake.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    for body in ({"path": str(fake), "name": "fake"}, {"path": str(tmp_path / "nope"), "name": "nope"},
                 {"path": str(tmp_path), "name": "folder"}):  # fmt: skip
        response = api.client.post("/v1/models/import", json=body, headers=admin)
        assert 400 <= response.status_code < 500, response.text


def test_server_paths_are_refused_to_users_with_one_message(api: Api, tiny_models: dict[str, Path]) -> None:
    user = api.as_user("bob")
    answers = []
    for reference in ("/etc", "/nonexistent", str(tiny_models["txt2img"]), "./models", "~/x.safetensors"):
        response = api.client.post("/v1/jobs", json={"prompt": "x", "model": reference}, headers=user)
        assert response.status_code == 400, (reference, response.text)
        error = response.json()["error"]
        assert error["param"] == "model"
        answers.append(error["message"].split("'", 2)[-1])  # the message after the quoted reference
    assert len(set(answers)) == 1, answers
    lora = api.client.post("/v1/jobs", json={"prompt": "x", "loras": [{"ref": str(tiny_models["lora"])}]},
                           headers=user)  # fmt: skip
    assert lora.status_code == 400
    assert lora.json()["error"]["param"] == "loras"
    admin = api.client.post("/v1/jobs", json={"prompt": "x", "model": str(tiny_models["txt2img"]), "steps": 1},
                            headers=api.as_user("alice"))  # fmt: skip
    assert admin.status_code == 202, admin.text


def test_trained_models_are_private_to_their_owner_who_may_share_and_delete_them(
    api: Api, tiny_models: dict[str, Path]
) -> None:
    from limner.db.models import ModelKind, ModelVisibility, User
    from limner.services.container import Services

    services: Services = api.client.app.state.services  # type: ignore[attr-defined]
    with services.sessions() as session:
        bob = session.query(User).filter_by(username="bob").one()
        services.models.register(session, "bobs-dog", str(tiny_models["lora"]), kind=ModelKind.LORA,
                                 architecture="sd", base_model=str(tiny_models["txt2img"]), created_by=bob.id,
                                 visibility=ModelVisibility.PRIVATE)  # fmt: skip
    bob_headers, carol_headers, admin = api.as_user("bob"), api.as_user("carol"), api.as_user("alice")
    mine = api.client.get("/v1/models/bobs-dog", headers=bob_headers).json()
    assert (mine["mine"], mine["visibility"], mine["reference"]) == (True, "private", None)  # no server path
    assert "bobs-dog" not in [model["name"] for model in api.client.get("/v1/models", headers=carol_headers).json()]
    assert api.client.get("/v1/models/bobs-dog", headers=carol_headers).status_code == 404
    refused = api.client.post("/v1/jobs", json={"prompt": "x", "model": "bobs-dog"}, headers=carol_headers)
    assert refused.status_code == 400
    own = api.client.post("/v1/jobs", json={"prompt": "x", "model": "bobs-dog", "steps": 1}, headers=bob_headers)
    assert own.status_code == 202, own.text
    assert api.client.get("/v1/models/bobs-dog", headers=admin).json()["reference"] == str(tiny_models["lora"])
    assert api.client.delete("/v1/models/bobs-dog", headers=carol_headers).status_code == 404
    shared = api.client.patch("/v1/models/bobs-dog", json={"visibility": "shared"}, headers=bob_headers)
    assert shared.status_code == 200, shared.text
    assert api.client.get("/v1/models/bobs-dog", headers=carol_headers).json()["mine"] is False
    assert api.client.delete("/v1/models/bobs-dog", headers=carol_headers).status_code == 403
    assert api.client.delete("/v1/models/bobs-dog", headers=bob_headers).status_code == 204
