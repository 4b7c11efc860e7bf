"""Named tables in TOML files (presets, styles): built-ins shipped in ``limner.data``, user files on top.

Why shared: presets and styles are both "a TOML table per name, validated by a pydantic model";
one reader gives both the same error messages.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from limner.core.errors import InvalidRequestError

EntryT = TypeVar("EntryT", bound=BaseModel)


def load_catalog(
    resource: str, model: type[EntryT], kind: str, param: str, user_file: Path | None
) -> dict[str, EntryT]:
    """Entries from the built-in ``resource``, then from ``user_file`` (same name replaces)."""
    text = resources.files("limner.data").joinpath(resource).read_text(encoding="utf-8")
    entries = parse_catalog(text, f"built-in {kind}s", model, kind, param)
    if user_file is not None:
        if not user_file.is_file():
            raise InvalidRequestError(f"{kind}s file {user_file} does not exist", param=param)
        entries.update(parse_catalog(user_file.read_text(encoding="utf-8"), str(user_file), model, kind, param))
    return entries


def parse_catalog(text: str, source: str, model: type[EntryT], kind: str, param: str) -> dict[str, EntryT]:
    try:
        table: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidRequestError(f"{source} is not valid TOML: {exc}", param=param) from exc
    entries: dict[str, EntryT] = {}
    for name, body in table.items():
        if not isinstance(body, dict):
            raise InvalidRequestError(f"{source}: [{name}] must be a table of settings", param=param)
        try:
            entries[name] = model(name=name, **body)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise InvalidRequestError(f"{source}: {kind} [{name}] {where}: {problem['msg']}", param=param) from exc
    return entries
