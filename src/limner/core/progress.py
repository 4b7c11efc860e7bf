"""Progress reports and cancellation, the two channels between a running job and its caller.

Why here: engines, the CLI's progress bar and the service's event stream all speak these types,
so none of them has to know about the others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProgressEvent:
    """One denoising step finished. ``preview`` is a small RGB picture (a PIL image) when asked for."""

    step: int
    total_steps: int
    preview: Any | None = None

    @property
    def fraction(self) -> float:
        return self.step / self.total_steps if self.total_steps else 1.0


ProgressCallback = Callable[[ProgressEvent], None]


def ignore_progress(_: ProgressEvent) -> None:
    """The default callback: a caller that does not watch progress."""


class CancelToken:
    """A thread-safe flag the caller sets and the engine checks after every denoising step."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def canceled(self) -> bool:
        return self._event.is_set()
