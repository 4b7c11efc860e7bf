"""Starting ``limner`` loads no model code, database or server, and writes nothing to the environment.

Each check runs in a fresh interpreter: this test process has long since imported torch and friends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from limner.cli.main import QUIET_LIBRARIES, app
from limner.cli.options import SCHEDULER_NAMES
from limner.core.requests import SchedulerName

HEAVY = ("torch", "diffusers", "transformers", "peft", "sqlalchemy", "fastapi", "streamlit", "PIL",
         "limner.engines.local", "limner.engines.remote", "limner.training.base", "limner.services")  # fmt: skip
GENERATING = ("generate", "img2img", "inpaint", "edit", "character")


def fresh_python(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key not in QUIET_LIBRARIES}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=environment, check=False)


def imported_modules(stderr: str) -> set[str]:
    """Module names from ``python -X importtime`` lines: ``import time: self | cumulative | name``."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("command", [(), ("generate",), ("train", "base"), ("models",), ("batch",)])
def test_help_imports_no_heavy_library(command: tuple[str, ...]) -> None:
    run = fresh_python("-X", "importtime", "-m", "limner.cli.main", *command, "--help")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Usage" in run.stdout
    modules = imported_modules(run.stderr)
    assert "limner.cli.generating" in modules  # the parse saw the app's own imports
    loaded = sorted(name for name in modules if name.split(".")[0] in HEAVY or name.startswith(HEAVY))
    assert loaded == []


def test_importing_the_cli_leaves_the_environment_alone() -> None:
    script = (
        "import json, os; before = dict(os.environ); import limner.cli.main; "
        "print(json.dumps(dict(os.environ) == before))"
    )
    run = fresh_python("-c", script)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout) is True


def test_main_sets_the_quiet_defaults_and_keeps_the_users() -> None:
    script = (
        "import json, os, sys; os.environ['TRANSFORMERS_VERBOSITY'] = 'info'; sys.argv = ['limner', '--help']\n"
        "from limner.cli.main import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(json.dumps({key: os.environ.get(key) for key in "
        "('HF_HUB_DISABLE_PROGRESS_BARS', 'TRANSFORMERS_VERBOSITY', 'DIFFUSERS_VERBOSITY')}))"
    )
    run = fresh_python("-c", script)
    assert run.returncode == 0, run.stderr[-2000:]
    last = run.stdout.strip().splitlines()[-1]
    assert json.loads(last) == {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "info",
                                "DIFFUSERS_VERBOSITY": "error"}  # fmt: skip


@pytest.mark.parametrize("command", GENERATING)
def test_every_generating_command_takes_the_shared_options(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    for flag in ("--negative", "--model", "--size", "--steps", "--guidance", "--seed", "--num-images", "--lora",
                 "--out"):  # fmt: skip
        assert flag in result.output, (command, flag)
    assert ("--scheduler" in result.output) is (command != "character")
    assert ("--preset" in result.output) is (command != "character")


def test_scheduler_help_names_every_sampler() -> None:
    assert SCHEDULER_NAMES.split(", ") == [name.value for name in SchedulerName]
