"""Wildcards and combinations in prompts, through dynamicprompts: ``{red|blue} fox``, ``__colors__``.

Why here and how it is used: a prompt template expands into one concrete prompt per image, before
the engine sees it. The generation service does the expanding (so the CLI, API, worker and batches
all get it); this module only knows the syntax and the wildcard files:

- ``{a|b|c}`` picks one option, ``{2$$a|b|c}`` two of them (see dynamicprompts' syntax);
- ``__name__`` picks a line of ``name.txt`` from the wildcard folders: limner's own
  (``limner/data/wildcards``) and the user's (setting ``wildcards_dir``), the user's file winning
  when both have one of the same name; ``__sub/name__`` reads ``sub/name.txt``.

Random picks are drawn from a generator seeded with each image's own seed, so a template with a
fixed seed expands the same way every time, and image ``i`` gets the prompt of seed ``base+i``.
Combinatorial expansion lists every combination instead, in a fixed order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from limner.core.errors import InvalidRequestError

_SYNTAX_MARKERS = ("{", "__")


def builtin_wildcards_dir() -> Path:
    """The wildcard files that ship with limner (``limner/data/wildcards``)."""
    return Path(str(resources.files("limner").joinpath("data", "wildcards")))


@dataclass(frozen=True)
class WildcardLibrary:
    """The wildcard folders to read, in order of precedence: a later folder's file wins."""

    folders: tuple[Path, ...]

    @classmethod
    def with_user_folder(cls, user_folder: Path | None) -> WildcardLibrary:
        folders = [builtin_wildcards_dir()]
        if user_folder is not None:
            folders.append(Path(user_folder).expanduser())
        return cls(tuple(folders))

    def names(self) -> list[str]:
        """Every wildcard name known (``colors``, ``sub/name``), sorted."""
        return sorted({name for folder in self.folders if folder.is_dir()
                       for name in _names_in(folder)})  # fmt: skip

    def _manager(self) -> Any:
        from dynamicprompts.wildcards import WildcardManager

        return WildcardManager(root_map={"": [folder for folder in self.folders if folder.is_dir()]})


def has_wildcards(template: str) -> bool:
    """Whether ``template`` holds choices or wildcards (bad syntax raises :class:`InvalidRequestError`)."""
    if not any(marker in template for marker in _SYNTAX_MARKERS):
        return False
    from dynamicprompts.commands import LiteralCommand

    return not isinstance(_parse(template), LiteralCommand)


def expand(
    template: str,
    library: WildcardLibrary,
    *,
    seeds: list[int],
    combinatorial: bool = False,
    limit: int | None = None,
) -> list[str]:
    """The prompts ``template`` stands for.

    Random: one per seed, each drawn from that seed. Combinatorial: every combination once, in a fixed
    order, the first ``limit`` of them (``seeds`` is ignored).
    """
    command = _parse(template)
    manager = library._manager()
    _check_wildcards_exist(command, manager, library)
    if combinatorial:
        from dynamicprompts.generators import CombinatorialPromptGenerator

        prompts = CombinatorialPromptGenerator(manager).generate(template, max_prompts=limit)
        return [str(prompt) for prompt in prompts]
    from dynamicprompts.generators import RandomPromptGenerator

    generator = RandomPromptGenerator(manager, seed=seeds[0] if seeds else None)
    return [str(prompt) for prompt in generator.generate(template, len(seeds), seeds=list(seeds))]


def _parse(template: str) -> Any:
    from dynamicprompts.parser.parse import parse
    from pyparsing import ParseBaseException

    try:
        return parse(template)
    except ParseBaseException as exc:
        raise InvalidRequestError(
            f"the prompt's {{a|b}} choices do not parse (column {exc.column}): every '{{' needs its '}}'",
            param="prompt",
        ) from exc


def _check_wildcards_exist(command: Any, manager: Any, library: WildcardLibrary) -> None:
    """An unknown ``__name__`` is an error (dynamicprompts would leave it in the prompt as text)."""
    for name in _wildcard_names(command):
        if not manager.get_values(name):
            known = ", ".join(library.names()[:20]) or "none"
            raise InvalidRequestError(
                f"no wildcard file for __{name}__ (known: {known}); add {name}.txt to the wildcards folder "
                "(setting wildcards_dir)",
                param="prompt",
            )


def _wildcard_names(command: Any) -> Iterator[str]:
    from dynamicprompts.commands import WildcardCommand

    if isinstance(command, WildcardCommand) and isinstance(command.wildcard, str):
        yield command.wildcard
    if dataclasses.is_dataclass(command):
        for item in dataclasses.fields(command):
            yield from _wildcard_names(getattr(command, item.name))
    elif isinstance(command, list | tuple):
        for part in command:
            yield from _wildcard_names(part)
    elif isinstance(command, dict):
        for part in command.values():
            yield from _wildcard_names(part)


def _names_in(folder: Path) -> Iterator[str]:
    for path in folder.rglob("*.txt"):
        yield path.relative_to(folder).with_suffix("").as_posix()
