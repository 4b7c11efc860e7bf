"""IP-Adapter: condition generation on reference pictures (consistent characters).

Why embeddings are computed here rather than by the pipeline: several references are averaged
(or weighted) into one embedding, and a saved character stores exactly these tensors, so a later
run with the saved embedding reproduces a run with the pictures bit for bit and skips the image
encoder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers.models.embeddings import ImageProjection

from limner.core.errors import InvalidRequestError, ModelDownloadError, UnsafeModelFormatError, first_line
from limner.engines.local.model_refs import PICKLE_SUFFIXES, SourceKind, check_weights_file

# h94/IP-Adapter's adapters by the UNet's cross-attention width (SD 1.x: 768, SDXL: 2048).
DEFAULT_ADAPTERS = {
    768: "h94/IP-Adapter/models/ip-adapter_sd15.safetensors",
    2048: "h94/IP-Adapter/sdxl_models/ip-adapter_sdxl.safetensors",
}


@dataclass(frozen=True)
class AdapterSource:
    """Where an adapter's weights and image encoder live; ``key`` names it in caches."""

    kind: SourceKind
    location: str
    subfolder: str
    weight_name: str
    key: str
    version: str = ""

    @property
    def embedding_key(self) -> str:
        """What saved characters' cached embeddings are filed under.

        Why the file's size and time for local files: an adapter replaced in place (limner-tiny-
        character went from a pooled to a Plus adapter) reads embeddings of another shape, so an
        embedding cached for the old file must not be reused.
        """
        return f"{self.key}#{self.version}" if self.version else self.key


def adapter_name(embedding_key: str) -> str:
    """The adapter an ``embedding_key`` was made with, as users name it (without the file's version)."""
    return re.sub(r"#\d+-\d+$", "", embedding_key)


@dataclass(frozen=True)
class ReferenceEmbedding:
    """Averaged image embedding of the references, and its unconditional twin, each (1, 1, ...)."""

    positive: torch.Tensor
    negative: torch.Tensor


def resolve_adapter(ref: str) -> AdapterSource:
    """A local ``.safetensors`` (its folder holds ``image_encoder/``) or ``owner/repo/sub/file.safetensors``."""
    path = Path(ref).expanduser()
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UnsafeModelFormatError(f"IP-Adapter {path.name}: pickle files are refused", param="ip_adapter")
    if path.is_file():
        if path.suffix.lower() != ".safetensors":
            raise UnsafeModelFormatError("an IP-Adapter must be a .safetensors file", param="ip_adapter")
        check_weights_file(path, param="ip_adapter")
        resolved = path.resolve()
        stat = resolved.stat()
        version = f"{stat.st_size}-{stat.st_mtime_ns}"
        return AdapterSource(SourceKind.FOLDER, str(resolved.parent), "", resolved.name, str(resolved), version)
    parts = ref.split("/")
    if len(parts) >= 3 and parts[-1].endswith(".safetensors") and ".." not in parts:
        return AdapterSource(SourceKind.HUB, "/".join(parts[:2]), "/".join(parts[2:-1]), parts[-1], ref)
    raise InvalidRequestError(
        f"IP-Adapter {ref!r}: give a local .safetensors file or 'owner/repo/[folder/]file.safetensors'",
        param="ip_adapter",
    )


def shipped_adapters() -> dict[int, str]:
    """Adapters inside the package, by cross-attention width: limner-tiny-character for limner-tiny (128)."""
    from limner.weights import LIMNER_TINY_CHARACTER

    adapter = LIMNER_TINY_CHARACTER / "ip-adapter.safetensors"
    return {128: str(adapter)} if adapter.is_file() else {}


def default_adapter(pipeline: Any) -> str:
    """The adapter for the model's cross-attention width: a shipped one (no download), else h94's."""
    unet = getattr(pipeline, "unet", None)
    width = getattr(getattr(unet, "config", None), "cross_attention_dim", None)
    adapter = {**DEFAULT_ADAPTERS, **shipped_adapters()}.get(width) if isinstance(width, int) else None
    if adapter is None:
        raise InvalidRequestError(
            f"no default IP-Adapter for {type(pipeline).__name__} (cross-attention width {width}); "
            "name one with ip_adapter / LIMNER_IP_ADAPTER",
            param="ip_adapter",
        )
    return adapter


def load_adapter(pipeline: Any, source: AdapterSource) -> None:
    if not hasattr(pipeline, "load_ip_adapter"):
        raise InvalidRequestError(f"{type(pipeline).__name__} does not support IP-Adapters", param="ip_adapter")
    try:
        pipeline.load_ip_adapter(source.location, subfolder=source.subfolder, weight_name=source.weight_name)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        reason = first_line(exc)
        if source.kind is SourceKind.HUB:
            message = f"could not get IP-Adapter {source.key}: {reason[:300]}"
            raise ModelDownloadError(message, param="ip_adapter") from exc
        message = f"IP-Adapter {source.key} does not fit this model: {reason[:300]}"
        raise InvalidRequestError(message, param="ip_adapter") from exc


def reads_patch_features(pipeline: Any) -> bool:
    """Whether the loaded adapter reads the encoder's per-patch hidden states (IP-Adapter Plus), not the
    pooled embedding (what ``encode_image``'s ``output_hidden_states`` must be)."""
    return not isinstance(pipeline.unet.encoder_hid_proj.image_projection_layers[0], ImageProjection)


def encode_references(pipeline: Any, images: list[Any], weights: list[float] | None) -> ReferenceEmbedding:
    """Encode each picture with the adapter's image encoder and take the weighted mean."""
    if not images:
        raise InvalidRequestError("no reference pictures to encode", param="reference_images")
    hidden_states = reads_patch_features(pipeline)
    factors = torch.tensor(weights or [1.0] * len(images), dtype=torch.float32)
    factors = factors / factors.sum()
    positives, negatives = [], []
    with torch.inference_mode():
        for image in images:
            positive, negative = pipeline.encode_image(image, pipeline.device, 1, hidden_states)
            positives.append(positive[0].float().cpu())
            negatives.append(negative[0].float().cpu())
    positive = (factors.view(-1, *[1] * positives[0].ndim) * torch.stack(positives)).sum(0)
    negative = (factors.view(-1, *[1] * negatives[0].ndim) * torch.stack(negatives)).sum(0)
    return ReferenceEmbedding(positive=positive[None, None].contiguous(), negative=negative[None, None].contiguous())


def embeds_argument(embedding: ReferenceEmbedding, classifier_free: bool, pipeline: Any) -> list[torch.Tensor]:
    """The ``ip_adapter_image_embeds`` value: one tensor, negative first when guidance is on."""
    tensor = torch.cat([embedding.negative, embedding.positive]) if classifier_free else embedding.positive
    return [tensor.to(device=pipeline.device, dtype=pipeline.unet.dtype)]
