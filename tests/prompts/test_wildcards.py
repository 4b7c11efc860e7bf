"""Wildcards and {a|b} choices expanded by dynamicprompts over limner's and the user's wildcard files."""

from __future__ import annotations

from pathlib import Path

import pytest

from limner.core.errors import InvalidRequestError
from limner.prompts.wildcards import WildcardLibrary, builtin_wildcards_dir, expand, has_wildcards


@pytest.fixture
def library(tmp_path: Path) -> WildcardLibrary:
    (tmp_path / "creatures.txt").write_text("fox\nowl\nhare\n# a comment\n\nlynx\n", encoding="utf-8")
    (tmp_path / "colors.txt").write_text("chartreuse\n", encoding="utf-8")  # wins over limner's colors.txt
    return WildcardLibrary.with_user_folder(tmp_path)


def test_limner_ships_useful_lists() -> None:
    shipped = {path.stem for path in builtin_wildcards_dir().glob("*.txt")}
    assert {"colors", "animals", "styles", "lighting"} <= shipped
    assert len((builtin_wildcards_dir() / "colors.txt").read_text(encoding="utf-8").split()) >= 10


def test_only_choices_and_wildcards_count() -> None:
    assert not has_wildcards("a (red:1.3) fox, [blurry], \\(x\\), snake_case")
    assert has_wildcards("a {red|blue} fox")
    assert has_wildcards("a __colors__ fox")


def test_a_fixed_seed_expands_the_same_way_and_image_i_follows_seed_i(library: WildcardLibrary) -> None:
    template = "a __creatures__ in {rain|snow|fog}"
    first = expand(template, library, seeds=[10, 11, 12, 13, 14, 15])
    assert first == expand(template, library, seeds=[10, 11, 12, 13, 14, 15])
    assert expand(template, library, seeds=[12]) == first[2:3]
    assert all(prompt.startswith("a ") and "__" not in prompt and "{" not in prompt for prompt in first)
    assert {prompt.split()[1] for prompt in first} <= {"fox", "owl", "hare", "lynx"}
    assert len(set(first)) > 1
    assert expand(template, library, seeds=[20, 21, 22, 23, 24, 25]) != first


def test_the_users_file_wins_over_limners(library: WildcardLibrary) -> None:
    assert expand("__colors__ sky", library, seeds=[1, 2, 3]) == ["chartreuse sky"] * 3


def test_combinatorial_lists_every_combination_once(library: WildcardLibrary) -> None:
    prompts = expand("{red|blue} __creatures__", library, seeds=[], combinatorial=True)
    assert len(prompts) == 8 == len(set(prompts))
    assert prompts[0] == "red fox"
    assert len(expand("{a|b|c} {d|e|f}", library, seeds=[], combinatorial=True, limit=4)) == 4


def test_unknown_wildcards_and_bad_syntax_are_clear_errors(library: WildcardLibrary) -> None:
    with pytest.raises(InvalidRequestError, match="no wildcard file for __nope__") as caught:
        expand("a __nope__ fox", library, seeds=[1])
    assert "creatures" in caught.value.message
    assert caught.value.param == "prompt"
    with pytest.raises(InvalidRequestError, match="do not parse"):
        has_wildcards("a {red|blue fox")
