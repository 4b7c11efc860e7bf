"""Data providers: the lists (themes, elements, environments, roles ...) ideas are sampled from.

Why data files: users extend them without touching code, and the LLM and the offline generator
draw on the same material. Built-ins live in ``limner/prompts/data``; a user folder adds items
to a provider of the same file name (a new table adds a new kind of role).
"""

from __future__ import annotations

import json
import random
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from limner.core.errors import InvalidRequestError
from limner.prompts.ideas import PromptIdea

DATA_PACKAGE = "limner.prompts"
PROVIDER_NAMES = ("themes", "elements", "environments", "roles", "lighting", "moods", "negative_prompts")
EXAMPLES_FILE = "examples.jsonl"
TEMPLATES_FILE = "templates.toml"


@dataclass(frozen=True)
class Choice:
    """One entry of a provider: its text, and the kind (table) it came from, e.g. ``render_engines``."""

    text: str
    kind: str = "items"


@dataclass(frozen=True)
class Example:
    """A few-shot example: the theme it answers and the idea itself."""

    theme: str
    idea: PromptIdea


@dataclass(frozen=True)
class Inspiration:
    """The parts sampled for one idea."""

    theme: str
    element: str
    environment: str
    role: str
    role_kind: str
    lighting: str
    mood: str
    negative_prompt: str

    def as_hint(self) -> str:
        return (
            f"subject: {self.element}; setting: {self.environment}; point of view ({self.role_kind}): {self.role}; "
            f"lighting: {self.lighting}; mood: {self.mood}"
        )


@dataclass(frozen=True)
class DataProviders:
    """Every provider's choices, the offline templates, and the few-shot examples."""

    providers: Mapping[str, tuple[Choice, ...]]
    templates: Mapping[str, tuple[str, ...]]
    examples: tuple[Example, ...] = field(default_factory=tuple)

    def choices(self, name: str) -> tuple[Choice, ...]:
        found = self.providers.get(name)
        if not found:
            raise InvalidRequestError(f"the {name!r} data provider has no items", param="data")
        return found

    def sample(self, rng: random.Random, theme: str | None = None) -> Inspiration:
        """One of everything, from ``rng`` alone, so a seed reproduces the same picks."""
        role = rng.choice(self.choices("roles"))
        return Inspiration(
            theme=theme or rng.choice(self.choices("themes")).text,
            element=rng.choice(self.choices("elements")).text,
            environment=rng.choice(self.choices("environments")).text,
            role=role.text,
            role_kind=role.kind.replace("_", " "),
            lighting=rng.choice(self.choices("lighting")).text,
            mood=rng.choice(self.choices("moods")).text,
            negative_prompt=rng.choice(self.choices("negative_prompts")).text,
        )


def load_data_providers(user_dir: Path | None = None, extra_examples: Iterable[Path] = ()) -> DataProviders:
    """Built-in data, then the user's folder on top (items added, never replaced), then extra example files."""
    builtin = resources.files(DATA_PACKAGE).joinpath("data")
    providers: dict[str, list[Choice]] = {}
    templates: dict[str, list[str]] = {}
    examples: list[Example] = []
    sources: list[Traversable | Path] = [builtin]
    if user_dir is not None:
        if not user_dir.is_dir():
            raise InvalidRequestError(f"data folder {user_dir} does not exist", param="data")
        sources.append(user_dir)
    for source in sources:
        for name in PROVIDER_NAMES:
            entry = source.joinpath(f"{name}.toml")
            if entry.is_file():
                for choice in _parse_provider(entry.read_text(encoding="utf-8"), f"{source}/{name}.toml"):
                    providers.setdefault(name, []).append(choice)
        entry = source.joinpath(TEMPLATES_FILE)
        if entry.is_file():
            for key, values in _parse_templates(entry.read_text(encoding="utf-8"), str(entry)).items():
                templates.setdefault(key, []).extend(values)
        entry = source.joinpath(EXAMPLES_FILE)
        if entry.is_file():
            examples.extend(parse_examples(entry.read_text(encoding="utf-8"), str(entry)))
    for path in extra_examples:
        if not path.is_file():
            raise InvalidRequestError(f"examples file {path} does not exist", param="examples")
        examples.extend(parse_examples(path.read_text(encoding="utf-8"), str(path)))
    return DataProviders(
        providers={name: tuple(_unique(choices)) for name, choices in providers.items()},
        templates={key: tuple(values) for key, values in templates.items()},
        examples=tuple(examples),
    )


def _parse_provider(text: str, source: str) -> list[Choice]:
    table = _toml(text, source)
    choices: list[Choice] = []
    if "items" in table:
        choices += [Choice(item) for item in _strings(table["items"], source)]
    for kind, body in table.items():
        if kind == "items":
            continue
        if not isinstance(body, dict) or "items" not in body:
            raise InvalidRequestError(f"{source}: [{kind}] must be a table with an items list", param="data")
        template = str(body.get("template") or "{item}")
        choices += [Choice(template.replace("{item}", item), kind) for item in _strings(body["items"], source)]
    return choices


def _parse_templates(text: str, source: str) -> dict[str, list[str]]:
    return {key: _strings(value, source) for key, value in _toml(text, source).items()}


def parse_examples(text: str, source: str) -> list[Example]:
    """JSONL few-shot examples; a bad line is reported with its number."""
    examples: list[Example] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            body = json.loads(line)
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
            examples.append(Example(theme=str(body.get("theme") or ""), idea=PromptIdea.model_validate(body)))
        except (ValueError, ValidationError) as exc:
            raise InvalidRequestError(f"{source} line {number}: {_short(exc)}", param="examples") from exc
    return examples


def _toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidRequestError(f"{source} is not valid TOML: {exc}", param="data") from exc


def _strings(value: Any, source: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidRequestError(f"{source}: items must be a list of strings", param="data")
    return [item.strip() for item in value if item.strip()]


def _unique(choices: list[Choice]) -> list[Choice]:
    seen: set[tuple[str, str]] = set()
    kept = []
    for choice in choices:
        key = (choice.kind, choice.text.lower())
        if key not in seen:
            seen.add(key)
            kept.append(choice)
    return kept


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        problem = exc.errors()[0]
        return f"{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}"
    return str(exc)
