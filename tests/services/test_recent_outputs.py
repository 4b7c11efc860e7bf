"""The in-memory newest pictures: taken once, bounded by count and bytes."""

from __future__ import annotations

from limner.services.recent_outputs import RecentOutputs


def test_a_picture_is_taken_once() -> None:
    recent = RecentOutputs()
    recent.keep("a", b"png")
    assert recent.take("a") == b"png"
    assert recent.take("a") is None


def test_the_oldest_pictures_go_first_past_the_count_or_the_bytes() -> None:
    recent = RecentOutputs(max_pictures=2, max_bytes=10)
    recent.keep("a", b"1234")
    recent.keep("b", b"1234")
    recent.keep("c", b"1234")  # a third picture: "a" goes
    assert recent.take("a") is None
    recent.keep("d", b"12345678")  # 12 bytes with "c": "c" goes too
    assert (recent.take("b"), recent.take("c"), recent.take("d")) == (None, None, b"12345678")
    recent.keep("huge", b"x" * 11)  # over the whole budget: not kept at all
    assert recent.take("huge") is None


def test_a_dropped_picture_is_gone() -> None:
    recent = RecentOutputs()
    recent.keep("a", b"png")
    recent.drop("a")
    assert recent.take("a") is None
