"""The offline idea generator: composes ideas from the data providers and templates, no network.

Why: ideation must work on a fresh machine with no LLM configured. With a seed the output is the
same every time (one ``random.Random`` owns all the choices), which also makes it testable.
"""

from __future__ import annotations

import random
import re
import secrets

from limner.prompts.data_providers import DataProviders, Inspiration
from limner.prompts.ideas import TITLE_MAX, PromptIdea

_ARTICLE = re.compile(r"^(a|an|the)\s+", re.IGNORECASE)
_SMALL_WORDS = frozenset({"a", "an", "the", "of", "in", "on", "at", "and", "or", "by", "with", "to", "for", "among"})
_MAX_TITLE_TRIES = 20


class OfflineIdeaGenerator:
    """Deterministic for a given seed and data; says what it is in ``description``."""

    def __init__(self, data: DataProviders, seed: int | None = None) -> None:
        self.seed = seed if seed is not None else secrets.randbelow(2**31)
        self._data = data
        self._rng = random.Random(self.seed)
        self._titles: set[str] = set()

    @property
    def description(self) -> str:
        return f"offline generator (no LLM configured), seed {self.seed}"

    def generate(self, count: int, theme: str | None = None) -> list[PromptIdea]:
        return [self._one(theme) for _ in range(count)]

    def _one(self, theme: str | None) -> PromptIdea:
        for _ in range(_MAX_TITLE_TRIES):
            parts = self._data.sample(self._rng, theme)
            title = _clip(smart_title(self._fill("titles", parts)), TITLE_MAX - 8)  # room for a " 123" suffix
            if title.lower() not in self._titles:
                break
        else:
            title = f"{title} {len(self._titles) + 1}"
        self._titles.add(title.lower())
        tags = [parts.theme, parts.mood, parts.role_kind, _noun(parts.element)]
        return PromptIdea(
            title=title,
            description=_capitalised(self._fill("descriptions", parts)),
            metatags=tags,
            prompt=self._fill("prompts", parts),
            negative_prompt=parts.negative_prompt,
        )

    def _fill(self, key: str, parts: Inspiration) -> str:
        templates = self._data.templates.get(key) or ("{element} {environment}, {theme}",)
        template = self._rng.choice(templates)
        values = {
            "theme": parts.theme,
            "element": parts.element,
            "element_noun": _noun(parts.element),
            "environment": parts.environment,
            "role": parts.role,
            "lighting": parts.lighting,
            "mood": parts.mood,
        }
        return template.format_map(values)


def _noun(text: str) -> str:
    return _ARTICLE.sub("", text)


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _clip(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters (a long theme makes a long title)."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:-")
    return cut or text[:limit]


def smart_title(text: str) -> str:
    """Title case that keeps short words small (``The Fox in the Misty Forest``)."""
    words = text.split()
    titled: list[str] = []
    for index, word in enumerate(words):
        lower = word.lower()
        if index and lower in _SMALL_WORDS and not titled[-1].endswith(":"):
            titled.append(lower)
        else:
            titled.append(word[:1].upper() + word[1:])
    return " ".join(titled)
