"""Start ``limner serve`` as a real process on a free loopback port (for tests that kill it)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LiveServer:
    def __init__(self, data_dir: Path, model: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "LIMNER_DATA_DIR": str(data_dir),
            "LIMNER_DEFAULT_MODEL": str(model),
            "LIMNER_DEVICE": "cpu",
            "LIMNER_PORT": str(self.port),
            "LIMNER_MAX_STEPS": "5000",
            "LIMNER_ADMIN_USERNAME": "admin",
            "LIMNER_ADMIN_PASSWORD": "correct horse battery",
            "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",
            **env,
        }
        self.log = data_dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "limner", "serve"], env=self.env, stdout=handle, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill()  # never leave a half-started server behind a failed test
        raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks run, as when a machine dies."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None

    def token(self) -> str:
        response = httpx.post(
            f"{self.url}/v1/auth/token", data={"username": "admin", "password": "correct horse battery"}
        )
        response.raise_for_status()
        return str(response.json()["access_token"])
