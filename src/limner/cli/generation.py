"""The CLI side of generation: local files in, PNGs in a folder out; the generation service in between.

Why so little here: resolving models, presets, styles and per-model defaults, validating and
running are the generation service's job (:mod:`limner.services.generation`), the same one the
API, the worker and batches call. The CLI adds only what is particular to it: pictures read from
local files, the local store for saved characters and registered model names (opened only when
one is asked for, and never writing server secrets), a progress bar, and PNG files on disk.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console

from limner.cli.progress import step_progress
from limner.config import Settings
from limner.core.requests import GenerationRequest, ImageRef, LoraSpec, parse_size
from limner.engines.base import TaskInputs
from limner.imaging.inputs import open_image_file
from limner.imaging.png import save_png
from limner.services.generation import (
    GenerationService,
    ModelLookup,
    RegisteredName,
    could_be_registered,
    registered_aliases,
)


def request_fields(
    *,
    task: str,
    prompt: str | None,
    negative: str | None,
    model: str | None,
    size: str | None,
    steps: int | None,
    guidance: float | None,
    seed: int | None,
    num_images: int | None,
    scheduler: str | None,
    loras: list[str] | None,
    **extra: Any,
) -> dict[str, Any]:
    """Collect the options the user actually gave (None means: use the preset or the model's default)."""
    fields: dict[str, Any] = {
        "task": task,
        "prompt": prompt,
        "negative_prompt": negative,
        "model": model,
        "steps": steps,
        "guidance_scale": guidance,
        "seed": seed,
        "num_images": num_images,
        "scheduler": scheduler,
        **extra,
    }
    if size is not None:
        fields["width"], fields["height"] = parse_size(size)
    if loras:
        fields["loras"] = [LoraSpec.parse(text) for text in loras]
    return {key: value for key, value in fields.items() if value is not None}


class LocalFiles:
    """A CLI request's pictures are local files; a saved character lives in the local store.

    Each file is decoded once: the pictures checked before the run are the ones the run uses.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._opened: dict[tuple[str, str], Any] = {}

    def task_inputs(self, request: GenerationRequest, *, decode: bool = True) -> TaskInputs:
        if request.character:
            from limner.services.store import local_store

            with local_store(self._settings) as store, store.sessions() as session:
                owner = store.users.local_user(session, self._settings.cli_user)
                saved = store.characters.inputs(session, owner, request.character)
            return TaskInputs(
                reference_images=saved.images,
                reference_weights=tuple(saved.weights),
                reference_embeddings=saved.embeddings,
            )
        return TaskInputs(
            init_image=self._open(request.init_image, "init_image", "RGB"),
            mask_image=self._open(request.mask_image, "mask_image", "L"),
            reference_images=tuple(self._open(ref, "reference_images", "RGB") for ref in request.reference_images),
            control_images=tuple(self._open(spec.image, "controls", "RGB") for spec in request.controls),
        )

    def remember_character(self, name: str, computed: Mapping[str, Any]) -> None:
        from limner.services.store import local_store

        with local_store(self._settings) as store, store.sessions() as session:
            owner = store.users.local_user(session, self._settings.cli_user)
            store.characters.remember(session, owner, name, dict(computed))

    def _open(self, ref: ImageRef | None, param: str, mode: str) -> Any:
        if ref is None:
            return None
        if ref.path is None:
            from limner.core.errors import InvalidRequestError

            raise InvalidRequestError("give a picture as a file path on the command line", param=param)
        key = (ref.path, mode)
        if key not in self._opened:
            self._opened[key] = open_image_file(
                Path(ref.path),
                param=param,
                max_bytes=self._settings.max_input_image_bytes,
                max_pixels=self._settings.max_pixels,
                mode=mode,
            )
        return self._opened[key]


def local_generation(settings: Settings, *, one_shot: bool = True) -> GenerationService:
    """The generation service for CLI commands: local engine, remote providers, the local model registry.

    A one-shot command (``limner generate``) runs ``LIMNER_BACKEND=auto`` on PyTorch: compiling the
    OpenVINO models costs more than it saves on one call. Commands that make many images (``limner
    batch``) and the server keep ``auto``'s choice; ``LIMNER_BACKEND=openvino`` always uses it.
    """
    from limner.engines.router import build_engine

    if one_shot and settings.backend == "auto":
        settings = settings.model_copy(update={"backend": "torch"})
    lookup = _local_lookup(settings)
    return GenerationService(settings, build_engine(settings, aliases=registered_aliases(lookup)), lookup)


def _local_lookup(settings: Settings) -> ModelLookup:
    """Registered names of the local store; the store module (and SQLAlchemy) is imported only once one is
    asked for, and only when a store exists."""
    stored: list[ModelLookup] = []

    def lookup(name: str) -> RegisteredName | None:
        if not could_be_registered(name) or not settings.has_store():
            return None
        if not stored:
            from limner.services.store import local_model_lookup

            stored.append(local_model_lookup(settings))
        return stored[0](name)

    return lookup


def run_and_save(
    settings: Settings,
    fields: dict[str, Any],
    preset: str | None,
    out_dir: Path | None,
    console: Console,
    init_image: Path | None = None,
    mask_image: Path | None = None,
    references: list[Path] | None = None,
    save_control: bool = False,
) -> list[Path]:
    """Validate everything, generate, write PNGs, and return their paths. Nothing is written on error.

    ``save_control``: also write the preprocessed control pictures beside the first PNG (their paths follow)."""
    pictures: dict[str, Any] = {"init_image": init_image, "mask_image": mask_image}
    fields = {**fields, **{key: ImageRef(path=str(path)) for key, path in pictures.items() if path is not None}}
    if references:
        fields["reference_images"] = [ImageRef(path=str(path)) for path in references]
    generation = local_generation(settings)
    fallback = generation.preset_fallback(fields, preset)
    if fallback is not None:  # the preset's hub model cannot be had here: say which model runs instead
        console.print(fallback.note, markup=False, highlight=False, soft_wrap=True)
    source = LocalFiles(settings)
    request = generation.prepare(fields, preset, source)  # every check that needs no weights, before the bar
    with step_progress(console, request.task.value) as on_progress:
        result = generation.run(request, source, progress=on_progress)
    target = out_dir or settings.output_dir
    paths = [save_png(item, target, compress_level=settings.png_compress_level) for item in result.images]
    if save_control and paths:
        from limner.cli.control import save_control_images

        paths += save_control_images(result.control_images, paths[0])
    return paths
