"""Requests whose prompt holds wildcards or ``{a|b}`` choices run as one image per expanded prompt.

Why in the service layer: the engine takes one prompt per request; expanding here, inside the one
generation service, gives every entry point (CLI, API, worker, batches) the same expansion. Each
image's record holds the prompt it was made with (``request.prompt``, its own seed, one image), so
the request in a PNG reproduces that very image, and the template as ``prompt_template``.

Seeds: image ``i`` of a request with base seed ``s`` uses seed ``s+i`` for its pixels and for its
random picks, so the same request expands and draws the same way every time.
"""

from __future__ import annotations

import secrets

from limner.core.errors import InvalidRequestError
from limner.core.progress import CancelToken, ProgressCallback, ProgressEvent
from limner.core.records import GeneratedImage, GenerationResult
from limner.core.requests import MAX_SEED, GenerationRequest, RequestLimits
from limner.engines.base import Engine, TaskInputs
from limner.prompts.wildcards import WildcardLibrary, expand, has_wildcards


def check_prompt_choices(request: GenerationRequest, library: WildcardLibrary, limits: RequestLimits) -> None:
    """Bad choice syntax, an unknown wildcard, or more combinations than images allowed: an error now."""
    if not has_wildcards(request.prompt):
        return
    if request.combinatorial:
        _combinations(request, library, limits)
    else:
        expand(request.prompt, library, seeds=[0])


def run_with_choices(
    engine: Engine,
    request: GenerationRequest,
    inputs: TaskInputs,
    library: WildcardLibrary,
    limits: RequestLimits,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> GenerationResult:
    """Run ``request`` on ``engine``; a prompt with choices runs once per expanded prompt, in order."""
    if not has_wildcards(request.prompt):
        return engine.run(request, inputs, progress, cancel)
    base = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
    if request.combinatorial:
        prompts = [prompt for prompt in _combinations(request, library, limits) for _ in range(request.num_images)]
    else:
        prompts = expand(request.prompt, library, seeds=request.seeds(base))
    images: list[GeneratedImage] = []
    computed: dict[str, object] = {}
    controls: list[object] = []  # the preprocessed control pictures: the same for every expanded prompt
    for index, prompt in enumerate(prompts):
        one = request.model_copy(update={"prompt": prompt, "seed": (base + index) % (MAX_SEED + 1), "num_images": 1,
                                         "combinatorial": False})  # fmt: skip
        result = engine.run(one, inputs, _shifted(progress, index, len(prompts)), cancel)
        computed.update(result.reference_embeddings)
        controls = controls or list(result.control_images)
        for item in result.images:
            record = item.record.model_copy(update={"index": index, "prompt_template": request.prompt})
            images.append(GeneratedImage(image=item.image, record=record))
    return GenerationResult(images=images, reference_embeddings=computed, control_images=controls)


def _combinations(request: GenerationRequest, library: WildcardLibrary, limits: RequestLimits) -> list[str]:
    room = limits.max_images // request.num_images
    prompts = expand(request.prompt, library, seeds=[], combinatorial=True, limit=room + 1)
    if len(prompts) > room:
        raise InvalidRequestError(
            f"the prompt has more than {room} combinations x {request.num_images} image(s) each, more than the "
            f"{limits.max_images} images a request may make; use fewer options or fewer images, or leave out "
            "combinatorial for random picks",
            param="prompt",
        )
    return prompts


def _shifted(progress: ProgressCallback, index: int, count: int) -> ProgressCallback:
    """Steps of the ``index``-th of ``count`` runs, reported as one run of ``count`` times the steps."""

    def report(event: ProgressEvent) -> None:
        total = event.total_steps * count
        progress(ProgressEvent(step=index * event.total_steps + event.step, total_steps=total, preview=event.preview))

    return report
