"""``limner train base`` refuses a bad --init-from with a message and exit code 2, before writing anything."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from limner.training.cli import train_app


def test_init_from_a_folder_that_is_not_a_model_is_a_usage_error(tiny_dataset: Path, tmp_path: Path) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    arguments = ["base", "--data", str(tiny_dataset), "--init-from", str(tmp_path), "--out", str(out)]
    result = CliRunner().invoke(train_app, [*arguments, "--work", str(work), "--no-progress"])
    assert result.exit_code == 2, result.output
    words = " ".join(result.output.replace("│", " ").split())  # the error box wraps lines at the terminal's width
    assert "not a limner model folder" in words
    assert not out.exists()
    assert not work.exists()
