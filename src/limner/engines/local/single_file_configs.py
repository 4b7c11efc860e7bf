"""Which shipped config folder a single-file checkpoint loads with, so no hub download is needed.

Why: diffusers loads an AUTOMATIC1111-style ``.safetensors`` by fetching its family's diffusers configs
from the hub. limner ships those configs (``limner/data/single_file/<family>``, copied from the
families' public diffusers repos) and passes the folder as ``from_single_file(config=...)``. A hub
cache of the family's repo still wins when present (it is what diffusers itself would use).

The keys tell the family (diffusers' ``infer_diffusers_model_type``) but not its variant: SD 2.x
512 (epsilon) and 768-v (v-prediction) share every tensor shape, and so do the Turbo models and
their bases. The variant comes from, in order: the file's SAI model-spec metadata
(``modelspec.architecture`` / ``modelspec.prediction_type``), a ``v_pred`` marker key, then the file
name (``turbo``, ``768``, ``512``, ``vpred``). An SD 2.x file with no hint loads as 768-v (as diffusers
does) and is then probed as AUTOMATIC1111 does (:func:`predicts_v`). Inpainting models (a UNet that
takes 9 input channels: latent, mask, masked picture) are their own families, read from that shape as
AUTOMATIC1111 does; their configs are the base family's with ``in_channels`` 9.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from limner.core.errors import LimnerError, UnsupportedTaskError
from limner.core.requests import Task
from limner.engines.local.model_refs import ModelSource, SourceKind
from limner.engines.local.safetensors_check import check_safetensors_file

# diffusers model type -> the default family; variants are chosen by ``choose_family``.
_DEFAULT_FAMILY = {
    "v1": "sd15",
    "v2": "sd2-768-v",
    "xl_base": "sdxl-base",
    "xl_refiner": "sdxl-refiner",
    "inpainting": "sd15-inpainting",
    "inpainting_v2": "sd2-inpainting",
    "xl_inpaint": "sdxl-inpainting",
}

FAMILY_HUB_REPOS: dict[str, str] = {
    "sd15": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "sd2-512": "stabilityai/stable-diffusion-2-1-base",
    "sd2-768-v": "stabilityai/stable-diffusion-2-1",
    "sd-turbo": "stabilityai/sd-turbo",
    "sdxl-base": "stabilityai/stable-diffusion-xl-base-1.0",
    "sdxl-turbo": "stabilityai/sdxl-turbo",
    "sdxl-refiner": "stabilityai/stable-diffusion-xl-refiner-1.0",
    "sd15-inpainting": "stable-diffusion-v1-5/stable-diffusion-inpainting",
    "sd2-inpainting": "stabilityai/stable-diffusion-2-inpainting",
    "sdxl-inpainting": "diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
}
"""Each family's diffusers repo on the hub; a local cache of it is used before the shipped folder."""

OFFLINE_FAMILIES = (
    "SD 1.x, SD 2.x (512 and 768-v), SDXL base and refiner, SD-Turbo and SDXL-Turbo, "
    "and the SD 1.5, SD 2 and SDXL inpainting models"
)


# The names and shapes diffusers' ``infer_diffusers_model_type`` tells these families apart by.
_UNET_CONV_IN = "model.diffusion_model.input_blocks.0.0.weight"
_SD2_CROSS_ATTENTION = "model.diffusion_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight"
_SDXL_SECOND_ENCODER = "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias"
_REFINER_ENCODER = "conditioner.embedders.0.model.transformer.resblocks.9.mlp.c_proj.bias"
_UNSHIPPED_MARKERS = ("edm_mean", "model.diffusion_model.input_blocks.10.0.skip_connection.bias")
"""Playground v2.5 and the x4 upscaler: UNet layouts of families limner ships no configs for."""
_TEXT_TO_IMAGE_TASKS = frozenset({Task.TXT2IMG, Task.CHARACTER})
_INPAINT_TASKS = frozenset({Task.INPAINT, Task.OUTPAINT})


@dataclass(frozen=True)
class FamilyChoice:
    family: str
    hinted: bool
    """False when nothing in the file named the variant (an SD 2.x file is then probed after loading)."""


def shipped_config_root() -> Path:
    return Path(str(resources.files("limner.data").joinpath("single_file")))


def choose_family(model_type: str, path: Path, metadata: Mapping[str, str], keys: set[str]) -> FamilyChoice | None:
    """The shipped family for a checkpoint of diffusers ``model_type``, or None when limner ships none."""
    default = _DEFAULT_FAMILY.get(model_type)
    if default is None:
        return None
    if model_type not in ("v2", "xl_base"):
        return FamilyChoice(default, hinted=True)
    turbo, v_prediction = _variant_hints(path, metadata, keys)
    if model_type == "xl_base":
        return FamilyChoice("sdxl-turbo" if turbo else "sdxl-base", hinted=True)
    if turbo:
        return FamilyChoice("sd-turbo", hinted=True)
    if v_prediction is None:
        return FamilyChoice(default, hinted=False)
    return FamilyChoice("sd2-768-v" if v_prediction else "sd2-512", hinted=True)


def _variant_hints(path: Path, metadata: Mapping[str, str], keys: set[str]) -> tuple[bool, bool | None]:
    """(is a Turbo model, predicts v or None when unknown) from metadata, marker keys and the name."""
    architecture = metadata.get("modelspec.architecture", "").lower()
    title = metadata.get("modelspec.title", "").lower()
    name = path.stem.lower()
    turbo = "turbo" in title or "turbo" in name
    prediction = metadata.get("modelspec.prediction_type", "").lower()
    if prediction in ("v", "v_prediction", "epsilon", "eps"):
        return turbo, prediction.startswith("v")
    if architecture.startswith("stable-diffusion-v2-"):
        return turbo, architecture.endswith("-v")
    if "v_pred" in keys:
        return turbo, True
    if re.search(r"v[-_]?pred|768", name):
        return turbo, True
    if "512" in name:
        return turbo, False
    return turbo, None


def header_model_type(shapes: Mapping[str, Sequence[int]]) -> str | None:
    """diffusers' model type (``v1``, ``xl_refiner``, ``inpainting`` ...) of a checkpoint's tensor names and
    shapes, for the families limner ships configs for; None for any other layout.

    Why not diffusers' own ``infer_diffusers_model_type``: importing it costs seconds (torch), and this
    runs while a request is resolved, before any engine. Same checks in the same order (a test holds the
    two together on every family's real layout); the loader itself still asks diffusers.
    """
    conv_in = shapes.get(_UNET_CONV_IN)
    if conv_in is None or len(conv_in) < 2 or any(marker in shapes for marker in _UNSHIPPED_MARKERS):
        return None
    sd2 = tuple(shapes.get(_SD2_CROSS_ATTENTION, (0,)))[-1:] == (1024,)
    if conv_in[1] == 9:
        return "inpainting_v2" if sd2 else "xl_inpaint" if _SDXL_SECOND_ENCODER in shapes else "inpainting"
    if sd2:
        return "v2"
    if _SDXL_SECOND_ENCODER in shapes:
        return "xl_base"
    if _REFINER_ENCODER in shapes:
        return "xl_refiner"
    return "v1" if conv_in[1] == 4 else None


def family_of_file(path: Path) -> FamilyChoice | None:
    """The shipped family of a single-file checkpoint, from its safetensors header alone (no tensor is read).

    None for a file of another kind (a LoRA, a family without shipped configs). Raises
    :class:`~limner.core.errors.UnsafeModelFormatError` for a file that is no valid safetensors file.
    """
    header = check_safetensors_file(path)
    raw_metadata = header.get("__metadata__")
    metadata = {str(k): str(v) for k, v in raw_metadata.items()} if isinstance(raw_metadata, dict) else {}
    shapes = {
        key: tuple(entry["shape"])
        for key, entry in header.items()
        if isinstance(entry, dict) and isinstance(entry.get("shape"), list)
    }
    model_type = header_model_type(shapes)
    return None if model_type is None else choose_family(model_type, path, metadata, set(shapes))


def family_model_id(reference: str) -> str | None:
    """The hub id of the model a single-file checkpoint is a copy (or fine-tune) of, by family; the
    per-model defaults of that id (``data/model_defaults.toml``) are the file's.

    None when ``reference`` is no ``.safetensors`` file here, is of no shipped family, or is an SD 2.x
    file whose variant (512 or 768-v) is known only once its UNet is probed: that file keeps the
    generic defaults and the size its loaded pipeline settles on. A file that cannot be read is left to
    the request's checks, which say what is wrong with it.
    """
    path = Path(reference).expanduser()
    try:
        if path.suffix.lower() != ".safetensors" or not path.is_file():
            return None
        choice = family_of_file(path)
    except (OSError, ValueError, LimnerError):
        return None
    if choice is None or not choice.hinted:
        return None
    return FAMILY_HUB_REPOS.get(choice.family)


def family_allows(family: str, task: Task) -> bool:
    """Whether a single file of ``family`` can do ``task``: an SDXL refiner does no text-to-image, an
    inpainting model only inpaint and outpaint (what the engine enforces and the capabilities list)."""
    if family == "sdxl-refiner":
        return task not in _TEXT_TO_IMAGE_TASKS
    if family.endswith("-inpainting"):
        return task in _INPAINT_TASKS
    return True


def check_single_file_task(source: ModelSource, task: Task) -> None:
    """Refuse, before any weight loads, a task a single file's family cannot do (its header tells):
    text-to-image on an SDXL refiner, anything but inpainting on an inpainting model.

    Why here: such a request used to load gigabytes first; the refiner (no first text encoder, trained
    on the last denoising steps only) then failed with an error that did not say why.
    """
    if source.kind is not SourceKind.SINGLE_FILE:
        return
    path = Path(source.location)
    choice = family_of_file(path)
    if choice is None or family_allows(choice.family, task):
        return
    if choice.family == "sdxl-refiner":
        raise UnsupportedTaskError(
            f"{path.name} is an SDXL refiner, which does img2img only (it refines an existing picture): "
            "pass an input image (limner img2img, or init_image in the API), or use an SDXL base model "
            "for text-to-image",
            param="model",
        )
    raise UnsupportedTaskError(
        f"{path.name} is an inpainting model (its UNet takes a mask), which does inpaint and outpaint "
        f"only: pass a mask (limner inpaint --mask, or mask_image in the API), or use a base model for "
        f"{task.value}",
        param="model",
    )


def cached_hub_config(family: str, cache_dir: Path | None = None) -> str | None:
    """The family's hub repo id when its ``model_index.json`` is in the hub cache, else None."""
    from huggingface_hub import try_to_load_from_cache

    repo = FAMILY_HUB_REPOS.get(family)
    if repo is None:
        return None
    cached = try_to_load_from_cache(repo, "model_index.json", cache_dir=cache_dir)
    return repo if isinstance(cached, str) else None


def predicts_v(unet: Any) -> bool:
    """AUTOMATIC1111's test for an SD 2.x UNet trained for v-prediction.

    On a constant latent at the last timestep, an epsilon model predicts noise close to the input,
    while a v model predicts roughly its negative, so the mean of ``output - input`` falls below -1.
    """
    import torch

    parameter = next(unet.parameters())
    width = int(unet.config.cross_attention_dim)
    channels = int(unet.config.in_channels)
    options = {"device": parameter.device, "dtype": parameter.dtype}
    latent = torch.full((1, channels, 8, 8), 0.5, **options)
    context = torch.full((1, 2, width), 0.5, **options)
    with torch.no_grad():
        output = unet(latent, torch.tensor([999], device=parameter.device), encoder_hidden_states=context).sample
    return bool((output - latent).float().mean().item() < -1)


def from_single_file_kwargs(family: str, config_root: Path | None = None) -> dict[str, object]:
    """``config=`` (and tokenizers) for ``from_single_file``.

    With no ``config_root``: the family's hub cache when present, else its shipped folder. A given
    ``config_root`` is used as is. A tokenizer folder that holds only settings
    (``tokenizer_config.json``) gets the real CLIP tokenizer built from the shipped merges; one with its
    own vocabulary files is left to diffusers.
    """
    from limner.engines.local.clip_tokenizer import clip_tokenizer

    if config_root is None:
        hub_repo = cached_hub_config(family)
        if hub_repo is not None:
            return {"config": hub_repo}
        config_root = shipped_config_root()
    folder = config_root / family
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(f"no single-file config for {family!r} in {config_root}")
    kwargs: dict[str, object] = {"config": str(folder)}
    for name in ("tokenizer", "tokenizer_2"):
        settings = folder / name
        has_vocab = (settings / "vocab.json").is_file() or (settings / "tokenizer.json").is_file()
        if settings.is_dir() and not has_vocab:
            kwargs[name] = clip_tokenizer(settings)
    return kwargs
