"""The engine interface: what the CLI, the queue worker and the API know about an engine.

Why a protocol: the service and the CLI depend on ``run(request, inputs, progress, cancel)`` and
not on diffusers, so a remote provider or a distributed worker can stand in for the local engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from limner.core.progress import CancelToken, ProgressCallback
from limner.core.records import GenerationResult
from limner.core.requests import GenerationRequest


@dataclass(frozen=True)
class TaskInputs:
    """Decoded input pictures (PIL images) for the tasks that take them.

    ``reference_embeddings`` maps an IP-Adapter key to a saved character's precomputed embedding;
    when the adapter in use has one, the reference pictures need not be encoded again.
    """

    init_image: Any | None = None
    mask_image: Any | None = None
    reference_images: tuple[Any, ...] = ()
    reference_weights: tuple[float, ...] | None = None
    reference_embeddings: Mapping[str, Any] = field(default_factory=dict)
    control_images: tuple[Any, ...] = ()  # one per request control, as given (before preprocessing)


class Engine(Protocol):
    """Anything that can run a generation request.

    ``validate`` checks all that can be checked without loading weights or calling a provider,
    so entry points reject bad input (and enqueue nothing) before any slow work starts.
    """

    def validate(self, request: GenerationRequest, inputs: TaskInputs) -> None: ...

    def run(
        self,
        request: GenerationRequest,
        inputs: TaskInputs,
        progress: ProgressCallback,
        cancel: CancelToken,
    ) -> GenerationResult: ...
