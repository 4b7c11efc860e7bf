"""A1111 weighting syntax read into weighted fragments, and its errors."""

from __future__ import annotations

import pytest

from limner.core.errors import InvalidRequestError
from limner.prompts.weighting import Fragment, is_weighted, parse_weighted, plain_text


def weights(text: str) -> list[tuple[str, float]]:
    return [(fragment.text, round(fragment.weight, 4)) for fragment in parse_weighted(text)]


def test_plain_text_is_one_unweighted_fragment() -> None:
    fragments = parse_weighted("a red fox, studio light")
    assert fragments == [Fragment("a red fox, studio light", 1.0)]
    assert not is_weighted(fragments)


def test_a1111_forms() -> None:
    assert weights("a (red:1.5) fox") == [("a ", 1.0), ("red", 1.5), (" fox", 1.0)]
    assert weights("(fox)") == [("fox", 1.1)]
    assert weights("((fox))") == [("fox", 1.21)]
    assert weights("[fox]") == [("fox", round(1 / 1.1, 4))]
    assert weights("(a (b:2) c)") == [("a ", 1.1), ("b", 2.2), (" c", 1.1)]
    assert weights("(fox: 0.5 )") == [("fox", 0.5)]


def test_weight_one_and_cancelling_brackets_are_no_weight() -> None:
    assert not is_weighted(parse_weighted("a (red:1.0) fox"))
    assert plain_text(parse_weighted("a (red:1.0) fox")) == "a red fox"
    assert not is_weighted(parse_weighted("([fox])"))


def test_escapes_and_plain_colons_are_text() -> None:
    assert weights(r"\(fox\) \[x\] a\:b \\") == [("(fox) [x] a:b \\", 1.0)]
    assert weights("ratio 16:9, (a:b)") == [("ratio 16:9, ", 1.0), ("a:b", 1.1)]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a (red fox", "never closed"),
        ("a red) fox", "no '('"),
        ("(a]", "expected ')'"),
        ("[cat:dog:0.5]", "not supported"),
        ("[cat|dog]", "not supported"),
        ("(fox:11)", "between 0 and 10"),
    ],
)
def test_bad_syntax_says_what_to_fix(text: str, fragment: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_weighted(text, "negative_prompt")
    assert fragment in caught.value.message
    assert caught.value.param == "negative_prompt"
