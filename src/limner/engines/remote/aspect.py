"""Map a requested WIDTHxHEIGHT to a provider's aspect-ratio choice (``"16:9"``).

Why: Stability and FLUX-class models take an aspect ratio and pick the pixel size themselves.
A size close to a supported ratio (within 3%) selects it; anything else is refused with the list,
rather than silently drawing a different shape.
"""

from __future__ import annotations

from collections.abc import Iterable

from limner.core.errors import InvalidRequestError

TOLERANCE = 0.03


def ratio_value(ratio: str) -> float:
    width, _, height = ratio.partition(":")
    return int(width) / int(height)


def nearest_ratio(width: int, height: int, allowed: Iterable[str], *, who: str) -> str:
    """The allowed ratio closest to ``width/height``, or an error naming the choices."""
    choices = list(allowed)
    wanted = width / height
    best = min(choices, key=lambda ratio: abs(ratio_value(ratio) / wanted - 1))
    if abs(ratio_value(best) / wanted - 1) > TOLERANCE:
        raise InvalidRequestError(
            f"{who} draws only these aspect ratios: {', '.join(choices)}; {width}x{height} is none of them",
            param="size",
        )
    return best
