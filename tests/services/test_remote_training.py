"""Training on a worker that shares only the database and the file store with the API (issue 15).

Three "machines" are three data folders: the API takes the upload, a worker trains, a third
machine generates with the result. None of them sees the others' disks.
"""

from __future__ import annotations

import io
import shutil
import time
import zipfile
from pathlib import Path

import pytest

from limner.core.requests import LoraSpec
from limner.db.models import Job, Role
from limner.finetune.config import DreamBoothConfig
from limner.services.container import Services, build_services
from limner.services.model_files import ModelFiles, ModelFilesError
from tests.api.conftest import png_bytes, service_settings


def _machine(root: Path, tiny_model: Path, shared: Path, name: str, workers: int) -> Services:
    settings = service_settings(
        root / name, tiny_model, workers=workers, database_url=f"sqlite:///{shared / 'limner.db'}",
        files_url=str(shared / "files"), external_workers=True,
    )  # fmt: skip
    return build_services(settings)


def _dataset() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.png", png_bytes(color="red"))
        archive.writestr("b.png", png_bytes(color="pink"))
    return buffer.getvalue()


def test_a_training_runs_on_another_machine_and_its_model_runs_on_a_third(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    api = _machine(tmp_path, tiny_models["txt2img"], shared, "api", workers=0)
    with api.sessions() as session:
        user = api.users.create(session, "bob", "correct horse battery", Role.USER)
        config = DreamBoothConfig(instance_prompt="a sks emoji", steps=2, rank=4, checkpoint_every=2)
        job_id = api.training_jobs.queue(session, user, "bobs-style", None, config, _dataset()).id

    worker = _machine(tmp_path, tiny_models["txt2img"], shared, "worker", workers=1)
    assert not (tmp_path / "worker" / "trainings").exists()  # the pictures are only in the API's folder and the store
    worker.start_worker()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with worker.sessions() as session:
                job = session.get(Job, job_id)
                assert job is not None
                if job.status in ("succeeded", "failed"):
                    break
            time.sleep(0.2)
        assert job.status == "succeeded", job.error
    finally:
        worker.stop()
    assert not any((shared / "files" / "trainings").glob("*.zip"))  # the upload is dropped once trained
    assert (tmp_path / "worker" / "trainings").is_dir()  # unpacked from the store on the worker
    shutil.rmtree(tmp_path / "worker")  # the worker machine's disk is not the third machine's

    third = _machine(tmp_path, tiny_models["txt2img"], shared, "third", workers=0)
    try:
        request = third.generation.resolve({"prompt": "a sks emoji", "loras": [LoraSpec(ref="bobs-style")],
                                            "steps": 2, "width": 64, "height": 64, "seed": 1})  # fmt: skip
        result = third.generation.run(request)
        assert result.images[0].image.size == (64, 64)
        assert any((tmp_path / "third" / "models" / "bobs-style").rglob("*.safetensors"))
    finally:
        third.stop()
        api.stop()


def test_a_packed_model_with_a_foreign_file_is_refused(tmp_path: Path) -> None:
    from limner.services.files import FileStore
    from limner.services.generation import RegisteredName

    files = FileStore(str(tmp_path / "files"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("weights.safetensors", b"x")
        archive.writestr("evil.pkl", b"x")
    files.put("models/m1.zip", buffer.getvalue())
    model_files = ModelFiles(files, tmp_path / "models")
    entry = RegisteredName(
        "m", str(tmp_path / "elsewhere"), files_key="models/m1.zip", files_path="weights.safetensors"
    )
    with pytest.raises(ModelFilesError, match=r"evil\.pkl"):
        model_files.local_reference(entry)
    assert not (tmp_path / "models" / "m").exists()
