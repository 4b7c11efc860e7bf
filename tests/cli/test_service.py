"""Service commands: create users, import CLI images into the gallery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from limner.cli.local_store import local_store
from limner.cli.main import app
from limner.config import Settings
from tests.api.live_server import free_port

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


# The parent runs `limner serve --ui` with the studio replaced by a process that records its pid
# and sleeps: the test is about the child's lifetime, not Streamlit.
_SERVE_WITH_FAKE_STUDIO = """
import sys
import limner.cli.ui as ui
pid_file = sys.argv[1]
sleeper = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(600)"
ui.streamlit_command = lambda host, port: [sys.executable, "-c", sleeper, pid_file]
from limner.cli.main import app
app(["serve", "--ui", "--ui-port", "1"])
"""


def _gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie nobody has reaped yet counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; the crash case needs prctl")
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["sigterm", "sigint", "crash"])
def test_the_studio_ends_with_serve(env: Path, stop: signal.Signals) -> None:
    """`limner serve --ui` stopped by SIGTERM, Ctrl-C or a crash (SIGKILL) leaves no studio behind."""
    port = free_port()
    pid_file = env / "studio.pid"
    child_env = {**os.environ, "LIMNER_PORT": str(port), "LIMNER_WORKERS": "0", "HF_HUB_OFFLINE": "1"}
    with (env / "serve.log").open("wb") as log:
        parent = subprocess.Popen([sys.executable, "-c", _SERVE_WITH_FAKE_STUDIO, str(pid_file)], env=child_env,
                                  stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not _serving(port) or not pid_file.exists() or not pid_file.read_text():
            assert parent.poll() is None, (env / "serve.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "limner serve --ui did not start"
            time.sleep(0.2)
        studio = int(pid_file.read_text())
        assert not _gone(studio)
        parent.send_signal(stop)
        parent.wait(30)
        deadline = time.monotonic() + 15
        while not _gone(studio) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _gone(studio), f"the studio (pid {studio}) outlived limner serve after {stop.name}"
    finally:
        if parent.poll() is None:
            parent.kill()
        if pid_file.exists() and pid_file.read_text() and not _gone(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def _serving(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
