"""Folder names from untrusted titles: one slug function for batches and the studio."""

from __future__ import annotations

from limner.core.slugs import slugify, unique_slug


def test_slugify_is_ascii_short_and_safe() -> None:
    assert slugify("Noodle Bar at Night!") == "noodle-bar-at-night"
    assert slugify("Crème Brûlée / Café") == "creme-brulee-cafe"
    assert slugify("../../etc/passwd") == "etc-passwd"
    assert slugify("日本") == "untitled"
    assert slugify("日本", fallback="batch") == "batch"
    long = slugify("word " * 40)
    assert len(long) <= 60
    assert not long.endswith("-")


def test_unique_slug_counts_up() -> None:
    assert unique_slug("A Fox", {"a-fox", "a-fox-2"}) == "a-fox-3"
    assert unique_slug("A Fox", set()) == "a-fox"


def test_accents_fold_to_ascii_letters() -> None:
    """Accents are folded, not dropped: "Café au lait" keeps its e (the studio once wrote caf-au-lait)."""
    assert slugify("Café au lait") == "cafe-au-lait"
    assert slugify("ＡＢＣ full-width") == "abc-full-width"
