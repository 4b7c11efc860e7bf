"""The local engine: runs any task of a request on diffusers pipelines on this machine.

The steps read top to bottom: check the request against limits, resolve the model and LoRAs
(errors before any weight loads), get the model from the cache, derive the task pipeline with a
fresh scheduler, run it with per-image seeded generators, and return images with full records.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from PIL import Image

from limner import __version__
from limner.config import Settings
from limner.core.errors import GenerationCanceledError, InvalidRequestError
from limner.core.progress import CancelToken, ProgressCallback, ProgressEvent, ignore_progress
from limner.core.records import GeneratedImage, GenerationResult, ImageRecord, Timings
from limner.core.requests import (
    HIRES_LANCZOS,
    HIRES_LATENT,
    MAX_SEED,
    DecodeMode,
    GenerationRequest,
    OutpaintSpec,
    Task,
)
from limner.engines.base import TaskInputs
from limner.engines.local.cache import ModelCache
from limner.engines.local.control import (
    ControlModels,
    ControlSource,
    check_controls,
    control_arguments,
    control_pipeline,
    with_legacy_callback,
)
from limner.engines.local.device import Placement, choose_placement
from limner.engines.local.gpu_tuning import apply_tuning, tuning_for
from limner.engines.local.hires import (
    enlarge_latents,
    enlarge_pictures,
    final_size,
    first_pass_output,
    refine_request,
    refine_steps,
    whole_run_progress,
)
from limner.engines.local.ip_adapter import (
    AdapterSource,
    ReferenceEmbedding,
    default_adapter,
    embeds_argument,
    encode_references,
    resolve_adapter,
)
from limner.engines.local.loading import load_pipeline
from limner.engines.local.model_refs import ModelSource, resolve_lora, resolve_model
from limner.engines.local.model_slot import ModelSlot
from limner.engines.local.openvino_text import OpenVinoTextEncoder, supports_text_encoder
from limner.engines.local.openvino_unet import (
    OpenVinoUNet,
    OpenVinoUNets,
    OpenVinoVAE,
    UnsupportedAdapterError,
    default_cache_dir,
    openvino_available,
)
from limner.engines.local.openvino_unet import supports as supports_openvino
from limner.engines.local.openvino_unet import supports_vae as supports_openvino_vae
from limner.engines.local.previews import step_previews
from limner.engines.local.prompt_embeds import PromptPair, needs_embeds, with_prompt_embeds
from limner.engines.local.schedulers import scheduler_label
from limner.engines.local.single_file_configs import check_single_file_task
from limner.engines.local.tasks import accepted_arguments, derive_pipeline, task_pipeline
from limner.engines.local.textual_inversion import EmbeddingSource, resolve_embedding
from limner.engines.local.tiling import DEFAULT_TILE
from limner.engines.local.tiny_vae import TinyVaes
from limner.engines.local.upscalers import (
    DiffusionUpscale,
    PixelUpscalers,
    UpscalerKind,
    UpscalerSource,
    diffusion_upscale,
    resolve_upscaler,
)
from limner.imaging.inputs import fit_size
from limner.imaging.outpaint import outpaint_canvas, padding_for

UPSCALE_PIXEL_ALLOWANCE = 16
"""An upscale's output may have this many times the pixel cap: it runs in tiles, so memory stays flat."""


logger = logging.getLogger(__name__)


class _StopRequestedError(Exception):
    """Raised inside the step callback to leave the denoising loop at once."""


@dataclass(frozen=True)
class Plan:
    """A request checked and resolved: what will load, and at which size."""

    request: GenerationRequest
    model: ModelSource
    loras: list[tuple[ModelSource, float]]
    size: tuple[int, int] | None
    ip_adapter: AdapterSource | None = None  # None with references: the model's default, chosen after load
    controls: tuple[ControlSource, ...] = ()  # the ControlNet / T2I-Adapter of each control
    upscaler: UpscalerSource | None = None  # task upscale's model, or the hires fix's upscaler model


@dataclass(frozen=True)
class _Ran:
    """How a pipeline call ran, for the records of its images."""

    model_name: str
    pipeline: str
    scheduler: str
    timings: Timings


class LocalEngine:
    """Runs requests on local diffusers pipelines; safe to call from several threads."""

    def __init__(
        self,
        settings: Settings,
        placement: Placement | None = None,
        aliases: Callable[[str], str | None] | None = None,
    ) -> None:
        """``aliases`` maps registered model names to weights references (the model registry)."""
        self._settings = settings
        self._aliases = aliases or _no_aliases
        self._placement = placement or choose_placement(settings.device, settings.dtype)
        self._tuning = tuning_for(self._placement, settings.compile, settings.fuse_qkv, settings.compile_backend)
        self._cache = ModelCache(settings.max_loaded_models, self._load, fuse_qkv=self._tuning.fuse_qkv)
        threads = settings.compute_threads()
        if self._placement.device.type == "cpu":
            torch.set_num_threads(threads)  # the cores shared by this process's worker threads
        self._openvino = self._openvino_unets(threads)
        self._tiny_vaes = TinyVaes(self._placement, settings.tiny_vae)
        self._controls = ControlModels(self._placement, settings.depth_model)
        self._upscalers = PixelUpscalers(self._placement)

    @property
    def placement(self) -> Placement:
        return self._placement

    def loaded_models(self) -> list[str]:
        return self._cache.loaded()

    def loaded_controls(self) -> list[str]:
        """Names of the ControlNets / T2I-Adapters kept loaded (shared by every model and run)."""
        return self._controls.loaded()

    def plan(self, request: GenerationRequest, inputs: TaskInputs) -> Plan:
        """Check everything that can be checked without weights; raise on the first problem."""
        request.check_limits(self._settings.request_limits())
        if request.task.needs_init_image and inputs.init_image is None:
            raise InvalidRequestError(f"{request.task.value} needs an input image", param="init_image")
        if request.task is Task.UPSCALE:  # no diffusion model of its own: only the upscaler is resolved
            model_upscaler = resolve_upscaler(self._aliases(str(request.upscaler)) or str(request.upscaler))
            if inputs.init_image is not None:
                self._check_upscale_size(inputs.init_image.size, request.upscale_factor or 4)
            model = model_upscaler.model or self._resolve_model(None)
            return Plan(request, model, [], None, upscaler=model_upscaler)
        if request.task.needs_mask and inputs.mask_image is None:
            raise InvalidRequestError("inpaint needs a mask image", param="mask_image")
        if request.uses_references and not (inputs.reference_images or inputs.reference_embeddings):
            what = f"saved character {request.character!r}" if request.character else "reference pictures"
            raise InvalidRequestError(f"the {what} could not be loaded", param="reference_images")
        model = self._resolve_model(request.model)
        check_single_file_task(model, request.task)
        loras = [(resolve_lora(self._aliases(spec.ref) or spec.ref), spec.weight) for spec in request.loras]
        adapter_ref = request.ip_adapter or self._settings.ip_adapter
        ip_adapter = resolve_adapter(adapter_ref) if request.uses_references and adapter_ref else None
        controls = check_controls(request, inputs.control_images, self._settings.depth_model, self._aliases)
        PromptPair.parse(request.prompt, request.negative_prompt)  # bad weighting syntax fails here, not mid-run
        self._embeddings(request)
        size: tuple[int, int] | None = None
        if request.width is not None and request.height is not None:
            size = (request.width, request.height)
        elif inputs.init_image is not None or inputs.control_images:
            picture = inputs.init_image if inputs.init_image is not None else inputs.control_images[0]
            width, height = picture.size
            size = fit_size(width, height, self._settings.max_pixels)
        if request.task is Task.OUTPAINT and request.outpaint is not None and inputs.init_image is not None:
            size = self._outpaint_size(inputs.init_image.size, request)
        upscaler: UpscalerSource | None = None
        if request.hires_scale is not None and request.hires_upscaler not in (HIRES_LATENT, HIRES_LANCZOS):
            upscaler = resolve_upscaler(self._aliases(request.hires_upscaler) or request.hires_upscaler,
                                        "hires_upscaler")  # fmt: skip
        return Plan(request, model, loras, size, ip_adapter, controls, upscaler=upscaler)

    def _outpaint_size(self, picture: tuple[int, int], request: GenerationRequest) -> tuple[int, int]:
        """The padded canvas's size; it must fit the pixel cap as it is (the original is never resized)."""
        width, height = padding_for(picture, request.outpaint or OutpaintSpec(right=1)).canvas_size(picture)
        if width * height > self._settings.max_pixels:
            raise InvalidRequestError(
                f"the outpainted canvas would be {width}x{height} = {width * height} pixels; this server allows at "
                f"most {self._settings.max_pixels} (pad less, or start from a smaller picture)",
                param="outpaint",
            )
        return width, height

    def validate(self, request: GenerationRequest, inputs: TaskInputs) -> None:
        self.plan(request, inputs)

    def run(
        self,
        request: GenerationRequest,
        inputs: TaskInputs | None = None,
        progress: ProgressCallback = ignore_progress,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        inputs = inputs or TaskInputs()
        cancel = cancel or CancelToken()
        plan = self.plan(request, inputs)
        _raise_if_canceled(cancel)
        if request.task is Task.UPSCALE:
            return self._upscale(plan, inputs, progress, cancel)
        if request.task is Task.OUTPAINT and request.outpaint is not None and inputs.init_image is not None:
            picture = inputs.init_image
            canvas, mask = outpaint_canvas(picture, padding_for(picture.size, request.outpaint))
            inputs = replace(inputs, init_image=canvas, mask_image=mask)

        load_started = time.perf_counter()
        slot, _ = self._cache.get(plan.model)
        load_seconds = time.perf_counter() - load_started
        _raise_if_canceled(cancel)
        return self._generate(slot, plan, inputs, progress, cancel, load_seconds)

    def encode_references(
        self, images: list[Any], weights: list[float] | None, model: str | None = None, ip_adapter: str | None = None
    ) -> tuple[str, ReferenceEmbedding]:
        """Encode reference pictures with an IP-Adapter's image encoder (for saved characters)."""
        slot, _ = self._cache.get(self._resolve_model(model))
        adapter_ref = ip_adapter or self._settings.ip_adapter or default_adapter(slot.pipeline)
        adapter = resolve_adapter(adapter_ref)
        with slot.using([], (adapter, 1.0)) as base:
            return adapter.embedding_key, encode_references(base, images, weights)

    def unload_loras(self, model: str | None = None) -> None:
        """Drop every LoRA adapter from a loaded model (its weights return to the original)."""
        slot, _ = self._cache.get(self._resolve_model(model))
        slot.unload_loras()

    def model_slot(self, model: str | None = None) -> ModelSlot:
        """The loaded model (loading it if needed); for tools that inspect the shared modules."""
        slot, _ = self._cache.get(self._resolve_model(model))
        return slot

    @property
    def backend(self) -> str:
        """``openvino`` when the UNet runs on OpenVINO where it can, else ``torch``."""
        return "openvino" if self._openvino is not None else "torch"

    def _openvino_unets(self, threads: int) -> OpenVinoUNets | None:
        backend = self._settings.backend
        on_cpu = self._placement.device.type == "cpu"
        if backend == "torch" or (backend == "auto" and not (on_cpu and openvino_available())):
            return None
        if not openvino_available():
            raise InvalidRequestError(
                "the openvino backend needs the OpenVINO runtime: pip install 'limner[openvino]'", param="backend"
            )
        if not on_cpu:
            raise InvalidRequestError("the openvino backend runs on the CPU; set the device to cpu", param="backend")
        cache_dir = self._settings.openvino_cache_dir or default_cache_dir()
        return OpenVinoUNets(cache_dir, threads, self._settings.openvino_precision)

    def _with_modules(
        self, pipeline: Any, base: Any, plan: Plan, adapter: AdapterSource | None, slot: ModelSlot
    ) -> Any:
        """The task pipeline with modules swapped in, in one ``from_pipe``: a tiny autoencoder when the
        request decodes fast; else the VAE decoder on OpenVINO; the UNet (with the run's LoRAs added in)
        on OpenVINO unless an IP-Adapter or a ControlNet patches the PyTorch one; the CLIP text encoders on
        OpenVINO unless textual-inversion words are loaded (they grow the PyTorch token table)."""
        model = slot.name
        parts: dict[str, Any] = {}
        if (plan.request.decode or DecodeMode(self._settings.decode)) != DecodeMode.FULL:
            parts["vae"] = self._tiny_vaes.for_pipeline(base, model)
        if self._openvino is not None:
            openvino = self._openvino
            if adapter is None and not plan.controls and supports_openvino(base.unet):
                _swap(parts, "unet", openvino.for_unet, base.unet, model)
            if "vae" not in parts and supports_openvino_vae(getattr(base, "vae", None)):
                parts["vae"] = openvino.for_vae(base.vae, model)
            for name in ("text_encoder", "text_encoder_2") if not plan.request.embeddings else ():
                if supports_text_encoder(getattr(base, name, None)):
                    _swap(parts, name, openvino.for_text_encoder, getattr(base, name), model)
        if not parts:
            return pipeline
        swapped = derive_pipeline(type(pipeline), pipeline, slot.derived, **parts)
        swapped.set_progress_bar_config(disable=True)
        return swapped

    def _resolve_model(self, model: str | None) -> ModelSource:
        reference = model or self._settings.default_model
        return resolve_model(self._aliases(reference) or reference)

    def _load(self, source: ModelSource) -> Any:
        pipeline = load_pipeline(source, self._placement, self._settings.hf_variant)
        applied = apply_tuning(pipeline, self._tuning)
        if applied:
            logger.info("tuned %s for %s: %s", source.name, self._placement.label, ", ".join(applied))
        return pipeline

    def _generate(
        self,
        slot: ModelSlot,
        plan: Plan,
        inputs: TaskInputs,
        progress: ProgressCallback,
        cancel: CancelToken,
        load_seconds: float,
    ) -> GenerationResult:
        request = plan.request
        base_seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
        seeds = request.seeds(base_seed)
        adapter = plan.ip_adapter
        if request.uses_references and adapter is None:
            adapter = resolve_adapter(default_adapter(slot.pipeline))
        control_modules = [self._controls.get(source) for source in plan.controls]
        controls = self._controls.prepare(request.controls, inputs.control_images, plan.size)
        embeddings = self._embeddings(request)
        with slot.using(plan.loras, (adapter, request.ip_adapter_scale) if adapter else None, embeddings) as base:
            scheduler = slot.schedulers.fresh(base.scheduler, request.scheduler)
            if control_modules:
                task = control_pipeline(base, request.task, scheduler, control_modules, slot.name, slot.derived)
            else:
                task = task_pipeline(base, request.task, scheduler, slot.name, slot.derived)
            pipeline = self._with_modules(task, base, plan, adapter, slot)
            hires = request.hires_scale is not None
            first = whole_run_progress(progress, request.steps, refine_steps(request), False) if hires else progress
            arguments = self._call_arguments(pipeline, plan, inputs, seeds, first, cancel, controls)
            if hires:
                arguments["output_type"] = first_pass_output(request)
            prompts = PromptPair.parse(request.prompt, request.negative_prompt)
            arguments = with_prompt_embeds(pipeline, prompts, arguments, slot.name)
            computed: dict[str, ReferenceEmbedding] = {}
            if adapter is not None:
                embedding = inputs.reference_embeddings.get(adapter.embedding_key)
                if embedding is None:
                    weights = list(inputs.reference_weights or request.reference_weights or []) or None
                    embedding = encode_references(base, list(inputs.reference_images), weights)
                    computed[adapter.embedding_key] = embedding
                classifier_free = request.guidance_scale > 1 and base.unet.config.time_cond_proj_dim is None
                arguments["ip_adapter_image_embeds"] = embeds_argument(embedding, classifier_free, base)
            output, inference_seconds = _call(pipeline, arguments)
            label = type(pipeline).__name__ + _openvino_label(pipeline)
            if hires:
                output, refine_seconds, refiner = self._refine(base, slot, plan, output.images, arguments,
                                                               seeds, progress, cancel, adapter)  # fmt: skip
                inference_seconds += refine_seconds
                label += f" + hires fix ({refiner})"

        timings = Timings(load_s=round(load_seconds, 4), inference_s=round(inference_seconds, 4))
        pictures = list(output.images)
        if request.task.inpaints and "mask_image" in arguments and "image" in arguments:
            # Keep the unmasked area exactly: the VAE round trip would otherwise shift it slightly.
            pictures = [Image.composite(picture, arguments["image"], arguments["mask_image"]) for picture in pictures]
        ran = _Ran(slot.name, label, scheduler_label(scheduler), timings)
        images = self._images(request, base_seed, seeds, pictures, ran, adapter, len(inputs.reference_images))
        return GenerationResult(images=images, reference_embeddings=computed, control_images=controls)

    def _refine(
        self,
        base: Any,
        slot: ModelSlot,
        plan: Plan,
        first_images: Any,
        first_arguments: dict[str, Any],
        seeds: list[int],
        progress: ProgressCallback,
        cancel: CancelToken,
        adapter: AdapterSource | None,
    ) -> tuple[Any, float, str]:
        """The hires fix's second pass: the first pass's output enlarged, then img2img at the final size with
        the same weights (``from_pipe``), prompts and seeds. Returns its output, seconds and pipeline name."""
        request = plan.request
        if isinstance(first_images, torch.Tensor):
            latent_scale = int(getattr(base, "vae_scale_factor", 8))
            base_size = plan.size or (first_images.shape[-1] * latent_scale, first_images.shape[-2] * latent_scale)
            size = final_size(request, base_size)
            enlarged: Any = enlarge_latents(first_images, size, latent_scale)
        else:
            size = final_size(request, plan.size or first_images[0].size)
            source = plan.upscaler

            def upscale(picture: Image.Image, factor: float) -> Image.Image:
                assert source is not None
                return self._run_upscaler(source, picture, factor, request, seeds[0])

            enlarged = enlarge_pictures(list(first_images), request, size, upscale if source else None)
        refined = replace(plan, request=refine_request(request, size), size=size)
        scheduler = slot.schedulers.fresh(base.scheduler, request.scheduler)
        task = task_pipeline(base, Task.IMG2IMG, scheduler, slot.name, slot.derived)
        pipeline = self._with_modules(task, base, refined, adapter, slot)
        second = whole_run_progress(progress, request.steps, refine_steps(request), True)
        arguments = self._call_arguments(pipeline, refined, TaskInputs(), seeds, second, cancel)
        arguments["image"] = enlarged
        prompts = PromptPair.parse(request.prompt, request.negative_prompt)
        arguments = with_prompt_embeds(pipeline, prompts, arguments, slot.name)
        if "ip_adapter_image_embeds" in first_arguments:
            arguments["ip_adapter_image_embeds"] = first_arguments["ip_adapter_image_embeds"]
        output, seconds = _call(pipeline, arguments)
        return output, seconds, type(pipeline).__name__

    def _upscale(
        self, plan: Plan, inputs: TaskInputs, progress: ProgressCallback, cancel: CancelToken
    ) -> GenerationResult:
        """Task upscale: the upscaler model over the input picture, tile by tile (progress per tile)."""
        request, source = plan.request, plan.upscaler
        if source is None or inputs.init_image is None:
            raise InvalidRequestError("upscale needs an input picture and an upscaler", param="upscaler")
        seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
        load_started = time.perf_counter()
        if source.kind is UpscalerKind.PIXEL:
            model = self._upscalers.get(source)
            scale, label = model.scale, f"{model.architecture} x{model.scale} (spandrel)"
        else:
            slot, _ = self._cache.get(source.model or plan.model)
            scale, label = 4, type(slot.pipeline).__name__
        load_seconds = time.perf_counter() - load_started
        picture = inputs.init_image.convert("RGB")
        self._check_upscale_size(picture.size, request.upscale_factor or scale)

        def on_tile(done: int, total: int) -> None:
            progress(ProgressEvent(step=done, total_steps=total))
            _raise_if_canceled(cancel)

        started = time.perf_counter()
        with torch.inference_mode():
            result = self._run_upscaler(source, picture, request.upscale_factor or scale, request, seed, on_tile)
        timings = Timings(load_s=round(load_seconds, 4), inference_s=round(time.perf_counter() - started, 4))
        ran = _Ran(source.name, label, "", timings)
        return GenerationResult(images=self._images(request, seed, [seed], [result], ran))

    def _run_upscaler(
        self,
        source: UpscalerSource,
        picture: Image.Image,
        factor: float,
        request: GenerationRequest,
        seed: int,
        on_tile: Callable[[int, int], None] | None = None,
    ) -> Image.Image:
        """``picture`` ``factor`` times larger with a pixel upscaler (spandrel) or the SD x4 upscaler."""
        if source.kind is UpscalerKind.PIXEL:
            tile = DEFAULT_TILE if request.tile_size is None else request.tile_size
            return self._upscalers.get(source).upscale(picture, factor, tile, on_tile)
        slot, _ = self._cache.get(source.model or self._resolve_model(None))
        call = DiffusionUpscale(request.prompt, request.negative_prompt, request.steps, request.guidance_scale, seed)
        return diffusion_upscale(slot.pipeline, picture, factor, call, request.tile_size, on_tile)

    def _check_upscale_size(self, size: tuple[int, int], factor: float) -> None:
        """An upscale may make up to :data:`UPSCALE_PIXEL_ALLOWANCE` times the pixel cap (it runs in tiles)."""
        pixels = round(size[0] * factor) * round(size[1] * factor)
        allowed = self._settings.max_pixels * UPSCALE_PIXEL_ALLOWANCE
        if pixels > allowed:
            raise InvalidRequestError(
                f"upscaling {size[0]}x{size[1]} by {factor:g} makes {pixels} pixels; this server allows at most "
                f"{allowed} ({UPSCALE_PIXEL_ALLOWANCE} times its pixel cap): use a smaller factor",
                param="upscale_factor",
            )

    def _images(
        self,
        request: GenerationRequest,
        base_seed: int,
        seeds: list[int],
        pictures: list[Image.Image],
        ran: _Ran,
        adapter: AdapterSource | None = None,
        reference_count: int = 0,
    ) -> list[GeneratedImage]:
        """Each picture with its full record (the request as run: model and seed resolved)."""
        resolved = request.model_copy(
            update={"model": request.model or self._settings.default_model, "seed": base_seed}
        )
        images: list[GeneratedImage] = []
        for index, (image, seed) in enumerate(zip(pictures, seeds, strict=True)):
            record = ImageRecord(
                request=resolved, seed=seed, index=index, width=image.width, height=image.height,
                model_name=ran.model_name, pipeline=ran.pipeline, scheduler=ran.scheduler, timings=ran.timings,
                limner_version=__version__, ip_adapter=adapter.key if adapter else None,
                character=request.character, reference_count=reference_count if adapter else 0,
            )  # fmt: skip
            images.append(GeneratedImage(image=image, record=record))
        return images

    def batch_key(self, request: GenerationRequest) -> tuple[Any, ...] | None:
        """What requests must share to run as one pipeline call (None: this one runs alone).

        Text-to-image without references: the same model, size, steps, guidance, sampler and LoRA set;
        prompts, negative prompts, seeds and image counts may differ.
        """
        if request.task is not Task.TXT2IMG or request.uses_references or request.controls or request.width is None:
            return None
        if request.hires_scale is not None:  # two passes with their own sizes
            return None
        if request.embeddings or _weighted(request):
            return None  # embedding words change the shared tokenizer; weights need embeddings of their own
        loras = tuple((spec.ref, spec.weight) for spec in request.loras)
        model = request.model or self._settings.default_model
        decode = request.decode or DecodeMode(self._settings.decode)
        return (model, request.width, request.height, request.steps, request.guidance_scale, request.scheduler, loras,
                decode)  # fmt: skip

    def run_together(
        self,
        requests: list[GenerationRequest],
        progress: list[ProgressCallback],
        cancels: list[CancelToken],
    ) -> list[GenerationResult | GenerationCanceledError]:
        """Requests of one :meth:`batch_key` in one pipeline call; each gets what it would get alone.

        One generator per image keeps image i of a request equal to its solo run (within float
        tolerance of the batched kernels). Progress goes to every request; a request canceled meanwhile
        gets a canceled error while the others finish (the call stops only when all are canceled).
        """
        if len({self.batch_key(request) for request in requests}) != 1 or self.batch_key(requests[0]) is None:
            raise ValueError("run_together takes requests of one batch key")
        plans = [self.plan(request, TaskInputs()) for request in requests]
        load_started = time.perf_counter()
        slot, _ = self._cache.get(plans[0].model)
        load_seconds = time.perf_counter() - load_started
        if any(needs_embeds(slot.pipeline, PromptPair.parse(r.prompt, r.negative_prompt)) for r in requests):
            return self._one_by_one(slot, plans, progress, cancels, load_seconds)
        base_seeds = [r.seed if r.seed is not None else secrets.randbelow(MAX_SEED + 1) for r in requests]
        seeds = [request.seeds(base) for request, base in zip(requests, base_seeds, strict=True)]
        everyone = CancelToken()

        def cancel_when_all_canceled(_: ProgressEvent) -> None:
            if all(cancel.canceled for cancel in cancels):
                everyone.cancel()

        offsets = [sum(r.num_images for r in requests[:index]) for index in range(len(requests))]
        listeners = [*zip(offsets, progress, strict=True), (0, cancel_when_all_canceled)]

        first = plans[0]
        with slot.using(first.loras, None) as base:
            scheduler = slot.schedulers.fresh(base.scheduler, first.request.scheduler)
            task = task_pipeline(base, Task.TXT2IMG, scheduler, slot.name, slot.derived)
            pipeline = self._with_modules(task, base, first, None, slot)
            merged = first.request.model_copy(update={"preview": any(r.preview for r in requests)})
            flat_seeds = [seed for request_seeds in seeds for seed in request_seeds]
            arguments = self._call_arguments(pipeline, replace(first, request=merged), TaskInputs(), flat_seeds,
                                             listeners, everyone)  # fmt: skip
            arguments["prompt"] = [r.prompt for r in requests for _ in range(r.num_images)]
            negatives = [r.negative_prompt for r in requests for _ in range(r.num_images)]
            arguments["negative_prompt"] = negatives if any(negatives) else None
            arguments["num_images_per_prompt"] = 1
            output, inference_seconds = _call(pipeline, arguments)
        timings = Timings(load_s=round(load_seconds, 4), inference_s=round(inference_seconds, 4))
        ran = _Ran(slot.name, type(pipeline).__name__ + _openvino_label(pipeline), scheduler_label(scheduler), timings)
        pictures = list(output.images)
        results: list[GenerationResult | GenerationCanceledError] = []
        for request, base_seed, request_seeds, cancel in zip(requests, base_seeds, seeds, cancels, strict=True):
            mine, pictures = pictures[: request.num_images], pictures[request.num_images :]
            if cancel.canceled:
                results.append(GenerationCanceledError("generation canceled"))
            else:
                results.append(GenerationResult(images=self._images(request, base_seed, request_seeds, mine, ran)))
        return results

    def _one_by_one(
        self,
        slot: ModelSlot,
        plans: list[Plan],
        progress: list[ProgressCallback],
        cancels: list[CancelToken],
        load_seconds: float,
    ) -> list[GenerationResult | GenerationCanceledError]:
        """Requests of one batch key run one after the other: a prompt longer than the text encoder's
        window gets embeddings of its own length, and padding the others to it would change their images."""
        results: list[GenerationResult | GenerationCanceledError] = []
        for plan, listener, cancel in zip(plans, progress, cancels, strict=True):
            try:
                results.append(self._generate(slot, plan, TaskInputs(), listener, cancel, load_seconds))
            except GenerationCanceledError as exc:
                results.append(exc)
        return results

    def _embeddings(self, request: GenerationRequest) -> tuple[EmbeddingSource, ...]:
        """The request's textual-inversion embeddings, resolved (registered names too) before any load."""
        return tuple(resolve_embedding(self._aliases(ref) or ref) for ref in request.embeddings)

    def _call_arguments(
        self,
        pipeline: Any,
        plan: Plan,
        inputs: TaskInputs,
        seeds: list[int],
        progress: ProgressCallback | list[tuple[int, ProgressCallback]],
        cancel: CancelToken,
        controls: list[Any] | None = None,
    ) -> dict[str, Any]:
        """The pipeline's arguments. ``progress`` may be one callback, or (first image index, callback)
        pairs of a batched run, each told its own step preview. ``controls``: the preprocessed control pictures."""
        request = plan.request
        total = request.steps
        listeners = progress if isinstance(progress, list) else [(0, progress)]

        previews = step_previews(pipeline) if request.preview else None

        def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            latents = tensors.get("latents") if previews is not None and previews.due() else None
            for first_image, listener in listeners:
                preview = previews.make(latents[first_image:]) if previews and latents is not None else None
                listener(ProgressEvent(step=min(step + 1, total), total_steps=total, preview=preview))
            if cancel.canceled:
                pipe._interrupt = True
                raise _StopRequestedError
            return tensors

        arguments: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt or None,
            "num_inference_steps": request.steps,
            "guidance_scale": request.guidance_scale,
            "num_images_per_prompt": request.num_images,
            # One CPU generator per image: image i depends only on seed+i, on any device.
            "generator": [torch.Generator(device="cpu").manual_seed(seed) for seed in seeds],
            "callback_on_step_end": on_step_end,
            "callback_on_step_end_tensor_inputs": ["latents"],
            "output_type": "pil",
        }
        if plan.size is not None:
            arguments["width"], arguments["height"] = plan.size
        if request.task is not Task.TXT2IMG and inputs.init_image is not None:
            arguments["image"] = _resized(inputs.init_image, plan.size, "RGB")
        if request.task in (Task.IMG2IMG, Task.INPAINT, Task.OUTPAINT):
            arguments["strength"] = request.strength
        if request.task.inpaints and inputs.mask_image is not None:
            arguments["mask_image"] = _resized(inputs.mask_image, plan.size, "L")
        if request.task is Task.EDIT:
            arguments["image_guidance_scale"] = request.image_guidance_scale
        if controls:
            arguments.update(control_arguments(pipeline, request, controls))
        return accepted_arguments(pipeline, with_legacy_callback(pipeline, arguments))


def _resized(image: Image.Image, size: tuple[int, int] | None, mode: str) -> Image.Image:
    converted = image.convert(mode)
    if size is not None and converted.size != size:
        converted = converted.resize(size, Image.Resampling.LANCZOS)
    return converted


def _call(pipeline: Any, arguments: dict[str, Any]) -> tuple[Any, float]:
    """Run the pipeline; its output and the seconds it took (a stop asked for in a step callback is a cancel)."""
    started = time.perf_counter()
    try:
        with torch.inference_mode():
            output = pipeline(**arguments)
    except _StopRequestedError:
        raise GenerationCanceledError("generation canceled") from None
    return output, time.perf_counter() - started


def _swap(parts: dict[str, Any], name: str, stand_in: Callable[[Any, str], Any], module: Any, model: str) -> None:
    """``parts[name] = stand_in(module, model)``, unless the module's active adapters cannot run on OpenVINO
    (it stays on PyTorch then)."""
    try:
        parts[name] = stand_in(module, model)
    except UnsupportedAdapterError as exc:
        logger.info("the %s stays on PyTorch for this run: %s", name, exc)


def _openvino_label(pipeline: Any) -> str:
    """`` (OpenVINO unet, vae, text_encoder)``, `` (tiny VAE)``: what ran in place of the model's own modules."""
    kinds = (("unet", OpenVinoUNet), ("vae", OpenVinoVAE), ("text_encoder", OpenVinoTextEncoder),
             ("text_encoder_2", OpenVinoTextEncoder))  # fmt: skip
    parts = [name for name, kind in kinds if isinstance(getattr(pipeline, name, None), kind)]
    label = f" (OpenVINO {', '.join(parts)})" if parts else ""
    if type(getattr(pipeline, "vae", None)).__name__ == "AutoencoderTiny":
        label += " (tiny VAE)"
    return label


def _weighted(request: GenerationRequest) -> bool:
    """Whether the prompts use A1111 syntax at all: weights, or escapes and brackets of weight 1 that a solo run
    resolves to plain text (a prompt that does not parse counts too: it runs alone, and fails)."""
    try:
        pair = PromptPair.parse(request.prompt, request.negative_prompt)
    except InvalidRequestError:
        return True
    return pair.weighted or pair.plain != (request.prompt, request.negative_prompt)


def _no_aliases(_: str) -> str | None:
    return None


def _raise_if_canceled(cancel: CancelToken) -> None:
    if cancel.canceled:
        raise GenerationCanceledError("generation canceled")
