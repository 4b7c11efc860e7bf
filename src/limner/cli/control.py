"""The CLI's control options as request fields, and the preprocessed control pictures as files.

Why a module of its own: ``--control IMAGE[:TYPE][:WEIGHT]`` and ``--control-model REF`` pair up by
position (one model given once serves every control), which is CLI syntax, not request logic; the
request only ever sees a list of :class:`~limner.core.requests.ControlSpec`. Imported when a
command runs (it imports pydantic through the request model), never for ``--help``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from limner.cli.options import ControlOptions
from limner.core.errors import InvalidRequestError
from limner.core.requests import ControlSpec


def control_fields(options: ControlOptions) -> dict[str, Any]:
    """The request fields of the control options given (none: no fields, so presets and defaults hold)."""
    pictures = options.control or []
    models = options.control_model or []
    if not pictures:
        given = [name for name, value in (("--control-model", models), ("--control-start", options.control_start),
                                          ("--control-end", options.control_end), ("--guess-mode", options.guess_mode),
                                          ("--save-control", options.save_control)) if value]  # fmt: skip
        if given:
            message = f"{', '.join(given)} need a control picture: add --control IMAGE"
            raise InvalidRequestError(message, param="controls")
        return {}
    if len(models) > 1 and len(models) != len(pictures):
        raise InvalidRequestError(
            f"{len(pictures)} --control pictures but {len(models)} --control-model: give one model for all, "
            "or one per picture in the same order",
            param="controls",
        )
    extra: dict[str, Any] = {}
    if options.control_start is not None:
        extra["start"] = options.control_start
    if options.control_end is not None:
        extra["end"] = options.control_end
    specs = []
    for index, text in enumerate(pictures):
        model = models[index] if len(models) > 1 else (models[0] if models else None)
        try:
            specs.append(ControlSpec.parse(text, model=model, **extra))
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            message = str(problem["msg"]).removeprefix("Value error, ")
            raise InvalidRequestError(f"--control {text}: {where + ': ' if where else ''}{message}",
                                      param="controls") from exc  # fmt: skip
        except ValueError as exc:
            raise InvalidRequestError(f"--control {text}: {exc}", param="controls") from exc
    fields: dict[str, Any] = {"controls": specs}
    if options.guess_mode:
        fields["guess_mode"] = True
    return fields


def save_control_images(pictures: Sequence[Any], first_output: Path) -> list[Path]:
    """Write each control picture as ``<first output's name>-control-<n>.png`` beside it."""
    paths = []
    for number, picture in enumerate(pictures, start=1):
        path = first_output.with_name(f"{first_output.stem}-control-{number}.png")
        picture.save(path, format="PNG")
        paths.append(path)
    return paths
