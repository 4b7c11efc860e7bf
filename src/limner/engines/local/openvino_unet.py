"""OpenVINO on the CPU: the UNet, the VAE decoder and the CLIP text encoders, converted once, run inside
the same diffusers pipelines.

Why only the modules and not a new pipeline: every task, scheduler and input path of limner stays
the diffusers pipeline it is; :class:`OpenVinoUNet` stands in for ``pipeline.unet`` (``from_pipe``
with ``unet=``), so the denoising loop, guidance, callbacks, previews and cancel are unchanged.
The UNet is where a CPU spends its time over many steps (on limner-tiny at 20 steps ~90%), the VAE
decoder over few (SD-Turbo's one step: ~60%); :class:`OpenVinoVAE` stands in for the VAE the same
way, and :class:`~limner.engines.local.openvino_text.OpenVinoTextEncoder` for the text encoders.
OpenVINO runs them about twice as fast as PyTorch on the same threads.

Conversion (:mod:`limner.engines.local.openvino_convert`) takes seconds to minutes, so the converted
model is kept on disk under ``cache_dir/<key>/<shape>/<part>.xml``. The key hashes the module's
weights (every tensor's bytes), its config, the OpenVINO version and limner's, so changed weights or
an upgrade never reuse a stale conversion; a run with LoRAs converts the UNet (and a patched text
encoder) with the LoRAs patched in, under ``<key>-lora-<digest of the LoRA set>``. A LoRA's weight is
an input of that graph (read off the module's peft layers at every call), so a new weight of the
same LoRA set runs at once, without converting again.

SDXL's UNet (base and refiner) runs there too, its pooled text embedding and time ids passed as
inputs of the graph.

What it does not cover, and the engine then runs PyTorch as before: IP-Adapters (they replace the
UNet's attention processors), UNets that take other conditioning (LCM's ``timestep_cond``, class
labels), ControlNets (residuals into the UNet), text encoders while textual-inversion words
are loaded (they grow the token table), LoRAs other than plain low-rank updates of linear and
convolution layers (DoRA, LoRA biases, embeddings), and
devices other than the CPU.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import torch

from limner.engines.local.openvino_convert import (
    UnsupportedAdapterError,
    active_loras,
    convert,
    lora_key,
    lora_scales,
    weights_key,
)

logger = logging.getLogger(__name__)

__all__ = ["OpenVinoUNet", "OpenVinoUNets", "OpenVinoVAE", "UnsupportedAdapterError", "weights_key"]


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/limner/openvino`` (``~/.cache/...``): a cache beside the model caches, not server state."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "limner" / "openvino"


def openvino_available() -> bool:
    """True when the ``openvino`` package (extra ``limner[openvino]``) can be imported."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def supports_vae(vae: Any) -> bool:
    """A plain ``AutoencoderKL`` (the SD 1.x/2.x/XL VAE) whose decode takes only latents."""
    return type(vae).__name__ == "AutoencoderKL"


def supports(unet: Any) -> bool:
    """Whether this UNet's call is (sample, timestep, encoder_hidden_states), plus SDXL's pooled text
    embedding and time ids: SD 1.x/2.x and SDXL base and refiner shapes."""
    config = unet.config
    return (
        getattr(config, "addition_embed_type", None) in (None, "text_time")
        and getattr(config, "time_cond_proj_dim", None) is None
        and getattr(config, "class_embed_type", None) is None
    )


def precision_of(part: str, setting: str) -> str:
    """The compute precision OpenVINO is asked for on ``part`` under the ``openvino_precision`` setting.

    ``auto`` asks bf16 of the VAE decoder only. Why per module: the decoder runs once, straight into
    pixels, so its bf16 rounding stays within a fraction of a pixel level (measured below 1/255), and it
    is most of a few-step model's time (SD-Turbo's one step at 512 px: 13.5 s of 18.5 s in f32, 6.8 s in
    bf16). The UNet's rounding is fed back into every later step and the text encoder's into every
    step: in bf16 they moved limner-tiny's pixels by ~2/255, so they stay f32 unless ``bf16`` is asked.
    On CPUs without bf16 units OpenVINO computes in f32 whatever is asked.
    """
    if setting == "auto":
        return "bf16" if part == "vae-decoder" else "f32"
    return setting


class StandIn(torch.nn.Module):
    """A parameterless module that answers like the PyTorch one it replaces (``config``, ``dtype``,
    ``device``), so pipelines and ``from_pipe`` accept it; it keeps the original for what it delegates.
    ``variant`` names the LoRA set patched into the converted graph (``""``: none)."""

    def __init__(self, models: OpenVinoUNets, original: Any, variant: str = "") -> None:
        super().__init__()
        self._models = models
        self._original = [original]  # in a list: a registered submodule would make its weights ours
        self._variant = variant
        self.config = original.config

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def derivation_identity(self) -> tuple[Any, ...]:
        """What makes two stand-ins interchangeable in a derived pipeline (see ``tasks.DerivedPipelines``):
        their kind, the module they stand in for and the LoRA set patched in (its weights are read per call)."""
        return (type(self), id(self._original[0]), self._variant)

    def _compiled(self, shape: tuple[int, ...], part: str) -> Any:
        return self._models.compiled(self._original[0], shape, part, self._variant)

    def _lora_inputs(self) -> list[np.ndarray]:
        """The graph's last input when a LoRA set is patched in: the scales of its adapters as the
        original module's peft layers hold them now (the run's weights), read at every call."""
        return [self._models.lora_scales(self._original[0])] if self._variant else []


class OpenVinoUNet(StandIn):
    """Stands in for ``UNet2DConditionModel`` in a diffusers pipeline; runs compiled OpenVINO models.

    It is an ``nn.Module`` without parameters so that pipelines treat it like the UNet (``.config``,
    ``.dtype``, ``.device``) and ``from_pipe`` accepts it. The UNet's graph depends on the latent size
    (its up-sampling path is traced for one size), so there is one compiled model per size, converted
    on the first step at that size; the batch size stays free. Compiled models are safe to call from
    several threads: each call makes its own infer request.
    """

    @property
    def add_embedding(self) -> Any:
        """SDXL's pipelines read the width of the pooled embedding and time ids off ``unet.add_embedding``."""
        return self._original[0].add_embedding

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        added_cond_kwargs: dict[str, torch.Tensor] | None = None,
        return_dict: bool = True,
        **unused: Any,
    ) -> Any:
        extra = {key: value for key, value in unused.items() if value is not None}
        added = dict(added_cond_kwargs or {})
        unsupported = sorted([*extra, *(set(added) - {"text_embeds", "time_ids"})])
        if unsupported:
            raise ValueError(f"the OpenVINO UNet takes no {', '.join(unsupported)}")
        steps = torch.as_tensor(timestep, dtype=torch.float32).reshape(-1)
        if steps.numel() == 1:
            steps = steps.expand(sample.shape[0])
        shape: tuple[int, ...] = (int(sample.shape[-2]), int(sample.shape[-1]))
        inputs = [sample.float().numpy(), steps.numpy(), encoder_hidden_states.float().numpy()]
        if added:  # SDXL: one graph per pooled width and number of time ids (base 6, refiner 5)
            text_embeds, time_ids = added["text_embeds"].float(), added["time_ids"].float()
            shape += (int(text_embeds.shape[-1]), int(time_ids.shape[-1]))
            inputs += [text_embeds.numpy(), time_ids.numpy()]
        compiled = self._compiled(shape, "unet")
        result = compiled(inputs + self._lora_inputs())
        output = torch.from_numpy(np.asarray(result[0]))
        if return_dict:
            from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

            return UNet2DConditionOutput(sample=output)
        return (output,)


class OpenVinoVAE(StandIn):
    """Stands in for ``AutoencoderKL``: ``decode`` runs on OpenVINO (one compiled model per latent size),
    ``encode`` on the PyTorch VAE (it runs once per image; decoding is where the time goes)."""

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        return self._original[0].encode(*args, **kwargs)

    def decode(self, latents: torch.Tensor, return_dict: bool = True, generator: Any = None) -> Any:
        compiled = self._compiled((int(latents.shape[-2]), int(latents.shape[-1])), "vae-decoder")
        # One latent per call: the decoder was traced at batch 1, and decoding one at a time bounds memory.
        pictures = [torch.from_numpy(np.asarray(compiled([latent[None].float().numpy()])[0])) for latent in latents]
        output = torch.cat(pictures)
        if return_dict:
            from diffusers.models.autoencoders.vae import DecoderOutput

            return DecoderOutput(sample=output)
        return (output,)


class OpenVinoUNets:
    """Converted modules of one engine: on disk under ``cache_dir``, compiled once per loaded module,
    LoRA set and shape. Only the latest LoRA set of a module stays compiled beside its plain weights
    (another set is read back from disk in seconds); a run still holding a dropped one finishes with it."""

    def __init__(self, cache_dir: Path, threads: int, precision: str = "auto") -> None:
        self._cache_dir = Path(cache_dir)
        self._threads = threads
        self._precision = precision
        # Keyed by the module itself, weakly: an unloaded model's compiled twins go with it.
        self._keys: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self._compiled: weakref.WeakKeyDictionary[Any, dict[tuple[str, tuple[int, ...]], Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._labels: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        # The active LoRA layers found when the latest stand-in for a module was made (once per run):
        # a step reads their scales from this list instead of walking the module (7 ms on an SD UNet).
        self._loras: weakref.WeakKeyDictionary[Any, list[tuple[str, Any, str]]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def for_unet(self, unet: Any, label: str = "the model") -> OpenVinoUNet:
        """The stand-in for ``unet`` with its active LoRAs patched in; weights hashed now, sizes converted
        when first used. Raises :class:`UnsupportedAdapterError` for adapters that cannot be patched in."""
        self._register(unet, label)
        return OpenVinoUNet(self, unet, self._lora_variant(unet))

    def for_vae(self, vae: Any, label: str = "the model") -> OpenVinoVAE:
        """The stand-in for ``vae``: decoding on OpenVINO, encoding (img2img, inpaint) on PyTorch."""
        self._register(vae, label)
        return OpenVinoVAE(self, vae)

    def for_text_encoder(self, encoder: Any, label: str = "the model") -> Any:
        """The stand-in for a CLIP text encoder (``text_encoder`` or SDXL's ``text_encoder_2``)."""
        from limner.engines.local.openvino_text import OpenVinoTextEncoder

        self._register(encoder, label)
        return OpenVinoTextEncoder(self, encoder, self._lora_variant(encoder))

    def lora_scales(self, module: Any) -> np.ndarray:
        """The scale input for ``module``'s patched graph: its active LoRAs' weights now."""
        return lora_scales(self._loras[module])

    def _lora_variant(self, module: Any) -> str:
        """The key of ``module``'s active LoRA set (``""``: none); its layers are kept for the steps."""
        loras = active_loras(module)  # one walk of the module gives the key and the layers
        with self._lock:
            self._loras[module] = loras
        return lora_key(loras)

    def _register(self, module: Any, label: str) -> None:
        """Hash a module's weights once (the key of its conversions on disk)."""
        with self._lock:
            if module not in self._keys:
                self._keys[module] = weights_key(module)
                self._compiled[module] = {}
                self._labels[module] = label

    def compiled(self, module: Any, shape: tuple[int, ...], part: str = "unet", variant: str = "") -> Any:
        """The compiled ``part`` of ``module`` (with the LoRA set ``variant`` patched in) for inputs of
        ``shape`` (latent height and width, or the token count): converted, or read from disk."""
        with self._lock:
            known = self._compiled[module].get((variant, shape))
            if known is not None:
                return known
            import openvino

            folder = self._keys[module] + (f"-lora-{variant}" if variant else "")
            path = self._cache_dir / folder / "x".join(str(side) for side in shape) / f"{part}.xml"
            if not path.is_file():
                self._convert(module, shape, path, part, variant)
            core = openvino.Core()
            settings = {
                "INFERENCE_NUM_THREADS": self._threads,
                "INFERENCE_PRECISION_HINT": precision_of(part, self._precision),
            }
            compiled = core.compile_model(core.read_model(str(path)), "CPU", settings)
            known_models = self._compiled[module]
            for older in [key for key in known_models if key[0] and key[0] != variant]:
                del known_models[older]  # one LoRA set compiled at a time: each is a full copy of the weights
            known_models[(variant, shape)] = compiled
            return compiled

    def _convert(self, module: Any, shape: tuple[int, ...], path: Path, part: str, variant: str = "") -> None:
        # The conversion patches in the LoRAs active now; they must be the stand-in's.
        if lora_key(active_loras(module)) != variant:
            raise RuntimeError(f"the LoRA set of this {part} changed since its OpenVINO stand-in was made")
        convert(module, part, shape, path, self._labels.get(module, "the model"), self._threads)
