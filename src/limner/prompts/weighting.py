"""AUTOMATIC1111 prompt weighting, read into weighted text fragments.

Why a translator of our own: compel (which turns weighted fragments into text-encoder embeddings)
has its own syntax (``word++``, ``(word)1.3``) and ships no reader for the syntax A1111, ComfyUI and
InvokeAI users type every day. Rather than rewrite A1111 text into compel text (and escape compel's
own operators on the way), this module reads A1111 syntax straight into ``(text, weight)`` fragments,
which compel takes as they are (its ``FlattenedPrompt`` of ``Fragment`` objects).

The syntax, as A1111 defines it:

- ``(text)`` multiplies the weight of ``text`` by 1.1, ``[text]`` divides it by 1.1; they nest;
- ``(text:1.5)`` multiplies it by 1.5 (a colon not followed by a number is plain text);
- ``\\(``, ``\\)``, ``\\[``, ``\\]``, ``\\:`` and ``\\\\`` are the characters themselves.

Unbalanced brackets are an error here (A1111 silently guesses), so a typo is reported before any
model loads instead of quietly weighting the rest of the prompt. A1111's prompt editing
``[from:to:when]`` and alternation ``[a|b]`` are refused with a message, not misread.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from limner.core.errors import InvalidRequestError

ATTENTION_STEP = 1.1
MAX_WEIGHT = 10.0
_ESCAPABLE = "()[]:\\"
_EXPLICIT_WEIGHT = re.compile(r":\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*\)")


@dataclass(frozen=True)
class Fragment:
    """A run of prompt text and the weight its tokens get (1.0: unweighted)."""

    text: str
    weight: float = 1.0


def parse_weighted(text: str, param: str = "prompt") -> list[Fragment]:
    """Read ``text`` in A1111 syntax into fragments (neighbours of equal weight merged, empties dropped).

    Raises :class:`InvalidRequestError` (``param`` names the field) on unbalanced brackets, a weight out
    of range, or the unsupported prompt-editing forms.
    """
    texts: list[str] = []
    weights: list[float] = []  # one per text, multiplied as the brackets around it close
    open_brackets: list[tuple[str, int, int]] = []  # (bracket, first piece index, position in text)
    position = 0
    literal: list[str] = []

    def flush() -> None:
        if literal:
            texts.append("".join(literal))
            weights.append(1.0)
            literal.clear()

    def close(bracket: str, factor: float, at: int) -> None:
        if not open_brackets or open_brackets[-1][0] != bracket:
            expected = {"(": ")", "[": "]"}[open_brackets[-1][0]] if open_brackets else None
            found = ")" if bracket == "(" else "]"
            hint = f"expected {expected!r}" if expected else f"no {bracket!r} opens it"
            raise InvalidRequestError(
                f"unbalanced brackets at character {at + 1}: {found!r} but {hint}; write \\{found} for the "
                "character itself",
                param=param,
            )
        _, first, _ = open_brackets.pop()
        for index in range(first, len(weights)):
            weights[index] *= factor

    while position < len(text):
        char = text[position]
        if char == "\\" and position + 1 < len(text) and text[position + 1] in _ESCAPABLE:
            literal.append(text[position + 1])
            position += 2
            continue
        if char in "([":
            flush()
            open_brackets.append((char, len(texts), position))
        elif char == ":" and open_brackets and open_brackets[-1][0] == "(":
            match = _EXPLICIT_WEIGHT.match(text, position)
            if match is None:
                literal.append(char)
            else:
                flush()
                close("(", _checked_weight(match.group(1), param), position)
                position = match.end()
                continue
        elif char in ":|" and open_brackets and open_brackets[-1][0] == "[":
            raise InvalidRequestError(
                f"A1111 prompt editing [from:to:when] and alternation [a|b] are not supported (character "
                f"{position + 1}); write {{a|b}} for a random choice, or \\{char} for the character itself",
                param=param,
            )
        elif char == ")":
            flush()
            close("(", ATTENTION_STEP, position)
        elif char == "]":
            flush()
            close("[", 1 / ATTENTION_STEP, position)
        else:
            literal.append(char)
        position += 1
    flush()
    if open_brackets:
        bracket, _, at = open_brackets[-1]
        closer = ")" if bracket == "(" else "]"
        raise InvalidRequestError(
            f"unbalanced brackets: the {bracket!r} at character {at + 1} is never closed; add {closer!r} or "
            f"write \\{bracket} for the character itself",
            param=param,
        )
    return _merged([Fragment(piece, weight) for piece, weight in zip(texts, weights, strict=True)])


def is_weighted(fragments: list[Fragment]) -> bool:
    """Whether any fragment carries a weight other than 1 (else the prompt is plain text)."""
    return any(not math.isclose(fragment.weight, 1.0, rel_tol=0, abs_tol=1e-9) for fragment in fragments)


def plain_text(fragments: list[Fragment]) -> str:
    """The prompt as the text encoder reads it, weights dropped and escapes resolved."""
    return "".join(fragment.text for fragment in fragments)


def _checked_weight(number: str, param: str) -> float:
    weight = float(number)
    if not 0.0 <= weight <= MAX_WEIGHT:
        raise InvalidRequestError(f"a weight must be between 0 and {MAX_WEIGHT:g}, not {number}", param=param)
    return weight


def _merged(fragments: list[Fragment]) -> list[Fragment]:
    merged: list[Fragment] = []
    for fragment in fragments:
        if not fragment.text:
            continue
        if merged and math.isclose(merged[-1].weight, fragment.weight, rel_tol=1e-9):
            merged[-1] = Fragment(merged[-1].text + fragment.text, merged[-1].weight)
        else:
            merged.append(fragment)
    return merged
