"""Folder names from titles: ``"Noodle Bar at Night!"`` -> ``noodle-bar-at-night``.

Why our own slugs: a title comes from an LLM or a CSV, so it is untrusted; the slug is ASCII,
has no path separators or dots at the start, and is short enough for every file system.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container

MAX_SLUG_LENGTH = 60
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def slugify(title: str, max_length: int = MAX_SLUG_LENGTH) -> str:
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_WORD.sub("-", ascii_text.lower()).strip("-")
    if len(slug) > max_length:
        cut = slug[:max_length]
        slug = cut.rsplit("-", 1)[0] if "-" in cut[max_length // 2 :] else cut
    return slug.strip("-") or "untitled"


def unique_slug(title: str, taken: Container[str]) -> str:
    """``slugify(title)``, with ``-2``, ``-3`` ... appended while the name is taken."""
    base = slugify(title)
    slug, number = base, 2
    while slug in taken:
        slug = f"{base}-{number}"
        number += 1
    return slug
