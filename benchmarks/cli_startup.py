"""Wall time and peak memory of ``limner --help``: what every command pays before it does anything.

Why: issue 13's bar is ``limner --help`` under 0.5 s on an idle 2-core machine, with no torch
imported. This runs the installed ``limner`` (or any command given after ``--``) N times and
prints the median wall time and peak RSS, then runs it once more with ``-X importtime`` and says
how many modules it imported and whether any heavy library was among them.

    .venv/bin/python benchmarks/cli_startup.py [--runs 15] [-- limner generate --help]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HEAVY = ("torch", "diffusers", "transformers", "peft", "sqlalchemy", "fastapi", "streamlit", "pydantic", "PIL")


@dataclass(frozen=True)
class ChildRun:
    """One finished child process: wall time, CPU time (user + system), peak RSS and exit code."""

    wall_s: float
    cpu_s: float
    max_rss_mb: float
    returncode: int
    stderr: str


def run_measured(command: Sequence[str], env: Mapping[str, str] | None = None) -> ChildRun:
    """Run ``command`` to the end and read its own resource usage (``wait4``), not this process's."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert process.stderr is not None
    stderr = process.stderr.read().decode(errors="replace")  # read before waiting: a full pipe would block it
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stderr.close()
    cpu = usage.ru_utime + usage.ru_stime
    return ChildRun(wall, cpu, usage.ru_maxrss / 1024, process.returncode, stderr)  # ru_maxrss is in KiB on Linux


def limner_command() -> list[str]:
    """The ``limner`` script installed beside this Python."""
    script = Path(sys.executable).parent / "limner"
    return [str(script)] if script.exists() else [sys.executable, "-m", "limner.cli.main"]


def imported_modules(command: Sequence[str]) -> list[str]:
    run = run_measured(command, env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    lines = (line for line in run.stderr.splitlines() if line.startswith("import time:") and "|" in line)
    return [line.rsplit("|", 1)[1].strip() for line in lines][1:]  # the first line is the header


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("command", nargs="*", help="the command to time (default: limner --help)")
    args = parser.parse_args()
    command = args.command or [*limner_command(), "--help"]
    run_measured(command)  # warm the file cache; not counted
    runs = [run_measured(command) for _ in range(args.runs)]
    if any(run.returncode for run in runs):
        raise SystemExit(f"{' '.join(command)} failed: {runs[0].stderr[-2000:]}")
    modules = imported_modules(command)
    heavy = sorted({name.split(".")[0] for name in modules} & set(HEAVY))
    engines = sorted(name for name in modules if name.startswith(("limner.engines.local", "limner.training.")))
    print(f"command: {' '.join(command)}  ({args.runs} runs)")
    print(f"wall time   median {statistics.median(r.wall_s for r in runs):.3f} s  "
          f"(min {min(r.wall_s for r in runs):.3f}, max {max(r.wall_s for r in runs):.3f})")  # fmt: skip
    print(f"cpu time    median {statistics.median(r.cpu_s for r in runs):.3f} s")
    print(f"peak RSS    median {statistics.median(r.max_rss_mb for r in runs):.1f} MB")
    print(f"modules     {len(modules)} imported; heavy: {', '.join(heavy) or 'none'}; "
          f"model code: {', '.join(engines) or 'none'}")  # fmt: skip


if __name__ == "__main__":
    main()
