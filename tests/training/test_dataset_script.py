"""The emoji dataset builder's captions (scripts/build_emoji_dataset.py), without any download."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_emoji_dataset.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_emoji_dataset", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_common_name_prefers_emojilib_over_the_unicode_name() -> None:
    script = _script()
    entry = {"unified": "2764-FE0F", "non_qualified": "2764", "name": "HEAVY BLACK HEART", "short_name": "heart"}
    emojilib = {"\u2764\ufe0f": ["red_heart", "love", "like", ":heart:", "valentines"]}
    name, keywords = script.common_name(entry, emojilib)
    assert name == "red heart"
    assert keywords == ["love", "like", "valentines"]


def test_common_name_falls_back_to_the_unicode_name() -> None:
    script = _script()
    entry = {"unified": "1F436", "name": "DOG FACE", "short_name": "dog"}
    assert script.common_name(entry, {}) == ("dog face", [])


def test_caption_variants_put_the_canonical_caption_first() -> None:
    script = _script()
    variants = script.caption_variants("dog face", ["pet", "animal", "friend", "extra"], "twemoji")
    assert variants[0] == "an emoji of dog face, pet, animal, friend, twemoji style"
    assert "dog face" in variants
    assert len(variants) == len(set(variants))
