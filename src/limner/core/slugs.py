"""Folder and file names from titles: ``"Noodle Bar at Night!"`` -> ``noodle-bar-at-night``.

Why one function for every caller (batch folders, the studio's batch zip): the same title must
give the same name everywhere. A title comes from an LLM, a CSV or a person, so it is untrusted:
accents are folded to ASCII (``Café`` -> ``cafe``), anything else that is not a letter or digit
becomes ``-``, so there are no path separators or leading dots, and the name is short enough for
every file system.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container

MAX_SLUG_LENGTH = 60
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def slugify(title: str, max_length: int = MAX_SLUG_LENGTH, *, fallback: str = "untitled") -> str:
    """The slug of ``title``, cut at a word boundary; ``fallback`` when nothing usable is left."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_WORD.sub("-", ascii_text.lower()).strip("-")
    if len(slug) > max_length:
        cut = slug[:max_length]
        slug = cut.rsplit("-", 1)[0] if "-" in cut[max_length // 2 :] else cut
    return slug.strip("-") or fallback


def unique_slug(title: str, taken: Container[str]) -> str:
    """``slugify(title)``, with ``-2``, ``-3`` ... appended while the name is taken."""
    base = slugify(title)
    slug, number = base, 2
    while slug in taken:
        slug = f"{base}-{number}"
        number += 1
    return slug
