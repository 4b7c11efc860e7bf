"""Service commands: create users, import CLI images into the gallery."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from limner.cli.local_store import local_store
from limner.cli.main import app
from limner.config import Settings

runner = CliRunner()


@pytest.fixture
def env(tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIMNER_DEFAULT_MODEL", str(tiny_models["txt2img"]))
    monkeypatch.setenv("LIMNER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIMNER_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("LIMNER_DEVICE", "cpu")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_create_admin_and_import_generated_images(env: Path) -> None:
    created = runner.invoke(app, ["users", "create-admin", "alice", "--password-stdin"], input="a long password\n")
    assert created.exit_code == 0, created.output
    assert "created admin alice" in created.output
    weak = runner.invoke(app, ["users", "create", "bob", "--password-stdin"], input="short\n")
    assert weak.exit_code == 2
    assert "at least 8" in weak.output
    duplicate = runner.invoke(app, ["users", "create", "alice", "--password-stdin"], input="a long password\n")
    assert duplicate.exit_code == 2

    generated = runner.invoke(app, ["generate", "a lighthouse", "--size", "64x64", "--steps", "2", "-n", "2"])
    assert generated.exit_code == 0, generated.output
    imported = runner.invoke(app, ["gallery", "import", str(env / "out"), "--user", "alice"])
    assert imported.exit_code == 0, imported.output
    assert imported.output.count(" -> ") == 2
    with local_store(Settings()) as services, services.sessions() as session:
        from limner.db.models import User
        from limner.services.gallery import ImageFilter

        alice = session.query(User).filter_by(username="alice").one()
        images, total = services.gallery.list_images(session, alice, ImageFilter(search="lighthouse"))
        assert total == 2
        assert images[0].parameters["request"]["prompt"] == "a lighthouse"
    missing = runner.invoke(app, ["gallery", "import", str(env / "out"), "--user", "nobody"])
    assert missing.exit_code == 2
