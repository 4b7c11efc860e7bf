"""OpenVINO on the CPU: the UNet and the VAE decoder, converted once, run inside the same diffusers pipelines.

Why only the module and not a new pipeline: every task, scheduler and input path of limner stays
the diffusers pipeline it is; :class:`OpenVinoUNet` stands in for ``pipeline.unet`` (``from_pipe``
with ``unet=``), so the denoising loop, guidance, callbacks, previews and cancel are unchanged.
The UNet is where a CPU spends its time over many steps (on limner-tiny at 20 steps ~90%), the VAE
decoder over few (SD-Turbo's one step: ~60%); :class:`OpenVinoVAE` stands in for the VAE the same
way. OpenVINO runs both about twice as fast as PyTorch on the same threads.

Conversion (``openvino.convert_model`` on a traced wrapper, with dynamic batch and size) takes
seconds to minutes, so the converted model is kept on disk under ``cache_dir/<key>/unet.xml``. The
key hashes the UNet's weights (every tensor's bytes), its config, the OpenVINO version and limner's,
so changed weights or an upgrade never reuse a stale conversion. Peak memory of a conversion is
about twice the UNet's fp32 size (the traced graph holds a copy of the weights).

What it does not cover, and the engine then runs PyTorch as before: LoRAs and IP-Adapters (they
patch the PyTorch UNet), UNets that take extra conditioning (SDXL's ``added_cond_kwargs``, LCM's
``timestep_cond``), and devices other than the CPU.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import warnings
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import torch

from limner import __version__

logger = logging.getLogger(__name__)


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
    """Whether this UNet's call is exactly (sample, timestep, encoder_hidden_states): SD 1.x/2.x shapes."""
    config = unet.config
    return (
        getattr(config, "addition_embed_type", None) is None
        and getattr(config, "time_cond_proj_dim", None) is None
        and getattr(config, "class_embed_type", None) is None
        and not getattr(unet, "peft_config", None)
    )


class _TracedUNet(torch.nn.Module):
    """The UNet with positional inputs and a tensor output, as the converter traces it."""

    def __init__(self, unet: Any) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        return self.unet(sample, timestep, encoder_hidden_states=hidden, return_dict=False)[0]


class _StandIn(torch.nn.Module):
    """A parameterless module that answers like the PyTorch one it replaces (``config``, ``dtype``,
    ``device``), so pipelines and ``from_pipe`` accept it; it keeps the original for what it delegates."""

    def __init__(self, models: OpenVinoUNets, original: Any) -> None:
        super().__init__()
        self._models = models
        self._original = [original]  # in a list: a registered submodule would make its weights ours
        self.config = original.config

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")


class OpenVinoUNet(_StandIn):
    """Stands in for ``UNet2DConditionModel`` in a diffusers pipeline; runs compiled OpenVINO models.

    It is an ``nn.Module`` without parameters so that pipelines treat it like the UNet (``.config``,
    ``.dtype``, ``.device``) and ``from_pipe`` accepts it. The UNet's graph depends on the latent size
    (its up-sampling path is traced for one size), so there is one compiled model per size, converted
    on the first step at that size; the batch size stays free. Compiled models are safe to call from
    several threads: each call makes its own infer request.
    """

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        return_dict: bool = True,
        **unused: Any,
    ) -> Any:
        extra = {key: value for key, value in unused.items() if value is not None}
        if extra:
            raise ValueError(f"the OpenVINO UNet takes no {', '.join(sorted(extra))}")
        steps = torch.as_tensor(timestep, dtype=torch.float32).reshape(-1)
        if steps.numel() == 1:
            steps = steps.expand(sample.shape[0])
        compiled = self._models.compiled(self._original[0], (int(sample.shape[-2]), int(sample.shape[-1])), "unet")
        result = compiled([sample.float().numpy(), steps.numpy(), encoder_hidden_states.float().numpy()])
        output = torch.from_numpy(np.asarray(result[0]))
        if return_dict:
            from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

            return UNet2DConditionOutput(sample=output)
        return (output,)


class OpenVinoUNets:
    """Converted UNets of one engine: on disk under ``cache_dir``, compiled once per loaded model and size."""

    def __init__(self, cache_dir: Path, threads: int) -> None:
        self._cache_dir = Path(cache_dir)
        self._threads = threads
        # Keyed by the UNet object itself, weakly: an unloaded model's compiled twins go with it.
        self._keys: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self._compiled: weakref.WeakKeyDictionary[Any, dict[tuple[int, int], Any]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def for_unet(self, unet: Any) -> OpenVinoUNet:
        """The stand-in for ``unet``; its weights are hashed now, its sizes converted when first used."""
        self._register(unet)
        return OpenVinoUNet(self, unet)

    def for_vae(self, vae: Any) -> OpenVinoVAE:
        """The stand-in for ``vae``: decoding on OpenVINO, encoding (img2img, inpaint) on PyTorch."""
        self._register(vae)
        return OpenVinoVAE(self, vae)

    def _register(self, module: Any) -> None:
        """Hash a module's weights once (the key of its conversions on disk)."""
        with self._lock:
            if module not in self._keys:
                self._keys[module] = weights_key(module)
                self._compiled[module] = {}

    def compiled(self, module: Any, latent_size: tuple[int, int], part: str = "unet") -> Any:
        """The compiled ``part`` of ``module`` for latents of ``latent_size`` (converted, or read from disk)."""
        with self._lock:
            known = self._compiled[module].get(latent_size)
            if known is not None:
                return known
            import openvino

            height, width = latent_size
            path = self._cache_dir / self._keys[module] / f"{height}x{width}" / f"{part}.xml"
            core = openvino.Core()
            model = core.read_model(str(path)) if path.is_file() else self._convert(module, latent_size, path, part)
            compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": self._threads})
            self._compiled[module][latent_size] = compiled
            return compiled

    def _convert(self, module: Any, latent_size: tuple[int, int], path: Path, part: str) -> Any:
        import openvino

        logger.warning("converting the %s to OpenVINO once for this size (kept in %s)", part, path.parent)
        config = module.config
        traced: torch.nn.Module
        if part == "vae-decoder":
            traced = _TracedDecoder(module)
            example: tuple[torch.Tensor, ...] = (torch.randn(1, config.latent_channels, *latent_size),)
        else:
            traced = _TracedUNet(module)
            width = config.cross_attention_dim
            example = (
                torch.randn(2, config.in_channels, *latent_size),
                torch.tensor([10.0, 10.0]),
                torch.randn(2, 77, width if isinstance(width, int) else width[0]),
            )
        with torch.no_grad(), warnings.catch_warnings():
            # The tracer's notes on Python-side branches are expected: the graph is traced per size.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            model = openvino.convert_model(traced.eval(), example_input=example)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.xml")
        openvino.save_model(model, str(partial), compress_to_fp16=False)
        partial.with_suffix(".bin").replace(path.with_suffix(".bin"))
        partial.replace(path)  # the .xml last: a half-written conversion is never read
        return model


class _TracedDecoder(torch.nn.Module):
    """The VAE's decode (post-quant conv and decoder) with a tensor in and out."""

    def __init__(self, vae: Any) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents, return_dict=False)[0]


class OpenVinoVAE(_StandIn):
    """Stands in for ``AutoencoderKL``: ``decode`` runs on OpenVINO (one compiled model per latent size),
    ``encode`` on the PyTorch VAE (it runs once per image; decoding is where the time goes)."""

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        return self._original[0].encode(*args, **kwargs)

    def decode(self, latents: torch.Tensor, return_dict: bool = True, generator: Any = None) -> Any:
        vae = self._original[0]
        compiled = self._models.compiled(vae, (int(latents.shape[-2]), int(latents.shape[-1])), "vae-decoder")
        # One latent per call: the decoder was traced at batch 1, and decoding one at a time bounds memory.
        pictures = [torch.from_numpy(np.asarray(compiled([latent[None].float().numpy()])[0])) for latent in latents]
        output = torch.cat(pictures)
        if return_dict:
            from diffusers.models.autoencoders.vae import DecoderOutput

            return DecoderOutput(sample=output)
        return (output,)


def weights_key(unet: Any) -> str:
    """A digest of the UNet's weights and config, the OpenVINO version and limner's."""
    import openvino

    digest = hashlib.sha256()
    digest.update(json.dumps(dict(unet.config), sort_keys=True, default=str).encode())
    digest.update(f"openvino {openvino.__version__} limner {__version__}".encode())
    for name, tensor in sorted(unet.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]
