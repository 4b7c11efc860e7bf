"""Fast decoding with a tiny autoencoder (``AutoencoderTiny``: TAESD and its family) in place of the VAE.

Why: on a CPU the full VAE decoder can cost more than the denoising itself (SD-Turbo's one step: about
60% of the time); a tiny autoencoder trained to mimic it decodes the same latents at a fraction of
the cost, with slightly softer detail. ``decode="fast"`` (a request field, or ``LIMNER_DECODE``) asks
for it. The tiny autoencoder must match the model's latent space, so it is chosen by family (TAESD for
SD 1.x/2.x, TAESDXL, TAESD3, TAEF1) or named by ``LIMNER_TINY_VAE`` (a hub id or a local folder,
safetensors only); a model of no known family (limner-tiny has its own latent space) is told so.
"""

from __future__ import annotations

import threading
from typing import Any

from limner.core.errors import InvalidRequestError, ModelDownloadError, first_line
from limner.engines.local.device import Placement

# Tiny autoencoders by model family (madebyollin's TAESD releases in diffusers format).
FAMILY_TINY_VAES = {
    "sd": "madebyollin/taesd",
    "sdxl": "madebyollin/taesdxl",
    "sd3": "madebyollin/taesd3",
    "flux": "madebyollin/taef1",
}
_SD_SCALING = 0.18215


def model_family(pipeline: Any) -> str | None:
    """The latent family of a loaded pipeline, or None when no tiny autoencoder is known to fit it."""
    name = type(pipeline).__name__
    vae = getattr(pipeline, "vae", None)
    config = getattr(vae, "config", None)
    if config is None:
        return None
    if "Flux" in name:
        return "flux"
    if "StableDiffusion3" in name:
        return "sd3"
    if "StableDiffusionXL" in name:
        return "sdxl"
    scale = 2 ** (len(getattr(config, "block_out_channels", ())) - 1)
    if "StableDiffusion" in name and config.latent_channels == 4 and scale == 8:
        return "sd" if abs(float(config.scaling_factor) - _SD_SCALING) < 1e-4 else None
    return None


class TinyVaes:
    """Tiny autoencoders of one engine, loaded once per reference and shared by every model that fits."""

    def __init__(self, placement: Placement, configured: str | None) -> None:
        self._placement = placement
        self._configured = configured
        self._loaded: dict[str, Any] = {}
        self._lock = threading.Lock()

    def for_pipeline(self, pipeline: Any, model_name: str) -> Any:
        """The tiny autoencoder for ``pipeline`` (the configured one, else its family's)."""
        reference = self._configured
        if reference is None:
            family = model_family(pipeline)
            if family is None:
                raise InvalidRequestError(
                    f"no tiny autoencoder is known for {model_name} (its latents are its own); "
                    "decode it in full, or name one that fits in the server's tiny VAE setting",
                    param="decode",
                )
            reference = FAMILY_TINY_VAES[family]
        with self._lock:
            if reference not in self._loaded:
                self._loaded[reference] = self._load(reference)
            return self._loaded[reference]

    def _load(self, reference: str) -> Any:
        from diffusers import AutoencoderTiny

        try:
            tiny = AutoencoderTiny.from_pretrained(reference, torch_dtype=self._placement.dtype, use_safetensors=True)
        except (OSError, ValueError) as exc:
            raise ModelDownloadError(f"could not load the tiny autoencoder {reference}: {first_line(exc)[:300]}",
                                     param="decode") from exc  # fmt: skip
        return tiny.to(self._placement.device)
