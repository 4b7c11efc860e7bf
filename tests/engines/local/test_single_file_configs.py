"""The shipped single-file configs are the real families': sizes, key layouts, schedulers; the variant rules."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders.single_file_utils import (
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
    infer_diffusers_model_type,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from limner.engines.local.single_file_configs import (
    FAMILY_HUB_REPOS,
    FamilyChoice,
    cached_hub_config,
    choose_family,
    family_model_id,
    family_of_file,
    header_model_type,
    predicts_v,
    shipped_config_root,
)
from limner.testing.single_file import TINY_SINGLE_FILE_FAMILIES, ldm_layout, write_tiny_single_file

ROOT = shipped_config_root()
_MODEL_CLASSES: dict[str, Any] = {
    "UNet2DConditionModel": UNet2DConditionModel,
    "AutoencoderKL": AutoencoderKL,
    "CLIPTextModel": CLIPTextModel,
    "CLIPTextModelWithProjection": CLIPTextModelWithProjection,
}
MetaModules = Callable[[str], dict[str, torch.nn.Module]]


def _index(family: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / family / "model_index.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def meta_modules() -> MetaModules:
    """A family's models built from the shipped configs on the meta device: real shapes, no memory."""
    built: dict[str, dict[str, torch.nn.Module]] = {}

    def build(family: str) -> dict[str, torch.nn.Module]:
        if family not in built:
            modules: dict[str, torch.nn.Module] = {}
            with torch.device("meta"):
                for name, (library, class_name) in ((k, v) for k, v in _index(family).items() if isinstance(v, list)):
                    if class_name not in _MODEL_CLASSES:
                        continue
                    model_class = _MODEL_CLASSES[class_name]
                    if library == "transformers":
                        modules[name] = model_class(CLIPTextConfig.from_pretrained(str(ROOT / family / name)))
                    else:
                        config = json.loads((ROOT / family / name / "config.json").read_text(encoding="utf-8"))
                        modules[name] = model_class.from_config(config)
            built[family] = modules
        return built[family]

    return build


@pytest.mark.parametrize(
    ("family", "component", "parameters"),
    [
        ("sd15", "unet", 859_520_964),
        ("sd15", "text_encoder", 123_060_480),
        ("sd15", "vae", 83_653_863),
        ("sd2-512", "unet", 865_910_724),
        ("sd2-768-v", "text_encoder", 340_387_840),  # OpenCLIP ViT-H, penultimate layer
        ("sd-turbo", "unet", 865_910_724),
        ("sdxl-base", "unet", 2_567_463_684),
        ("sdxl-base", "text_encoder_2", 694_659_840),  # OpenCLIP ViT-bigG
        ("sdxl-turbo", "unet", 2_567_463_684),
        ("sdxl-refiner", "unet", 2_259_526_660),
        # inpainting: the base UNet plus 5 more input channels in conv_in (320 x 5 x 3 x 3 = 14,400)
        ("sd15-inpainting", "unet", 859_535_364),
        ("sd2-inpainting", "unet", 865_925_124),
        ("sdxl-inpainting", "unet", 2_567_478_084),
    ],
)
def test_shipped_configs_build_real_sizes(
    meta_modules: MetaModules, family: str, component: str, parameters: int
) -> None:
    model = meta_modules(family)[component]
    assert sum(p.numel() for p in model.parameters()) == parameters


@pytest.mark.parametrize(
    ("family", "model_type"),
    [
        ("sd15", "v1"),
        ("sd2-768-v", "v2"),
        ("sdxl-base", "xl_base"),
        ("sdxl-refiner", "xl_refiner"),
        ("sd15-inpainting", "inpainting"),
        ("sd2-inpainting", "inpainting_v2"),
        ("sdxl-inpainting", "xl_inpaint"),
    ],
)
def test_real_shape_layout_is_recognised_and_converts_back(
    meta_modules: MetaModules, family: str, model_type: str
) -> None:
    """The original key layout at real shapes reads as the family and maps onto the shipped configs exactly."""
    modules: Any = meta_modules(family)
    checkpoint = ldm_layout(family, modules)
    assert infer_diffusers_model_type(checkpoint) == model_type
    assert header_model_type({key: tuple(value.shape) for key, value in checkpoint.items()}) == model_type
    for name, convert in (("unet", convert_ldm_unet_checkpoint), ("vae", convert_ldm_vae_checkpoint)):
        converted = convert(checkpoint, modules[name].config)
        expected = {key: value.shape for key, value in modules[name].state_dict().items()}
        assert {key: value.shape for key, value in converted.items()} == expected


@pytest.mark.parametrize("family", sorted(FAMILY_HUB_REPOS))
def test_every_family_folder_is_complete(family: str) -> None:
    import diffusers

    index = _index(family)
    for name, (library, class_name) in ((k, v) for k, v in index.items() if isinstance(v, list) and v[0]):
        files = {"scheduler": "scheduler_config.json", "tokenizer": "tokenizer_config.json"}
        assert (ROOT / family / name / files.get(name.removesuffix("_2"), "config.json")).is_file(), (family, name)
        if name == "scheduler":
            scheduler = getattr(diffusers, class_name).from_pretrained(str(ROOT / family), subfolder="scheduler")
            expected = "v_prediction" if family == "sd2-768-v" else "epsilon"
            assert scheduler.config.prediction_type == expected
            assert (scheduler.config.timestep_spacing == "trailing") == family.endswith("turbo")
        assert library in ("diffusers", "transformers")


@pytest.mark.parametrize(
    ("model_type", "name", "metadata", "keys", "expected"),
    [
        ("v1", "anything-v3", {}, set(), FamilyChoice("sd15", True)),
        ("v2", "v2-1_768-ema-pruned", {}, set(), FamilyChoice("sd2-768-v", True)),
        ("v2", "v2-1_512-ema-pruned", {}, set(), FamilyChoice("sd2-512", True)),
        ("v2", "sd_turbo", {}, set(), FamilyChoice("sd-turbo", True)),
        ("v2", "merged", {"modelspec.architecture": "stable-diffusion-v2-512"}, set(), FamilyChoice("sd2-512", True)),
        ("v2", "merged-768", {"modelspec.prediction_type": "epsilon"}, set(), FamilyChoice("sd2-512", True)),
        ("v2", "merged", {}, {"v_pred"}, FamilyChoice("sd2-768-v", True)),
        ("v2", "merged", {}, set(), FamilyChoice("sd2-768-v", False)),
        ("xl_base", "sd_xl_base_1.0", {}, set(), FamilyChoice("sdxl-base", True)),
        ("xl_base", "sd_xl_turbo_1.0_fp16", {}, set(), FamilyChoice("sdxl-turbo", True)),
        ("xl_base", "mine", {"modelspec.title": "SDXL Turbo"}, set(), FamilyChoice("sdxl-turbo", True)),
        ("xl_refiner", "sd_xl_refiner_1.0", {}, set(), FamilyChoice("sdxl-refiner", True)),
        ("inpainting", "sd-v1-5-inpainting", {}, set(), FamilyChoice("sd15-inpainting", True)),
        ("inpainting_v2", "512-inpainting-ema", {}, set(), FamilyChoice("sd2-inpainting", True)),
        ("xl_inpaint", "sd_xl_inpainting_0.1", {}, set(), FamilyChoice("sdxl-inpainting", True)),
        ("sd3", "sd3_medium", {}, set(), None),
    ],
)
def test_variant_comes_from_metadata_marker_keys_then_the_name(
    model_type: str, name: str, metadata: dict[str, str], keys: set[str], expected: FamilyChoice | None
) -> None:
    assert choose_family(model_type, Path(f"{name}.safetensors"), metadata, keys) == expected


@pytest.mark.parametrize("family", TINY_SINGLE_FILE_FAMILIES)
def test_the_header_alone_tells_the_family_of_a_file(tmp_path: Path, family: str) -> None:
    """No tensor is read: the header's names and shapes give the same family the loader picks."""
    names = {"sd2-512": "v2-1_512-ema-pruned", "sd2-768-v": "v2-1_768-ema-pruned"}
    path = tmp_path / f"{names.get(family, family)}.safetensors"
    write_tiny_single_file(family, path, tmp_path / "configs")
    assert family_of_file(path) == FamilyChoice(family, True)
    assert family_model_id(str(path)) == FAMILY_HUB_REPOS[family]


@pytest.mark.parametrize(
    "tensors",
    [
        {"model.diffusion_model.input_blocks.0.0.weight": (320, 7, 3, 3)},  # the x4 upscaler's 7 channels
        {"model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3), "edm_mean": (1, 4, 1, 1)},  # Playground
        {"double_blocks.0.img_attn.norm.key_norm.scale": (128,)},  # FLUX
        {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (4, 320)},
    ],
)
def test_layouts_limner_ships_no_configs_for_have_no_family(tensors: dict[str, tuple[int, ...]]) -> None:
    assert header_model_type(tensors) is None


def test_family_model_id_of_what_is_no_readable_single_file(tmp_path: Path) -> None:
    (tmp_path / "fake.safetensors").write_bytes(b"\x80\x04 not safetensors at all")
    for reference in ("limner-tiny", "stabilityai/sd-turbo", str(tmp_path / "missing.safetensors"),
                      str(tmp_path / "fake.safetensors"), str(tmp_path)):  # fmt: skip
        assert family_model_id(reference) is None


def test_a_hub_cache_of_the_family_repo_is_found(tmp_path: Path) -> None:
    assert cached_hub_config("sd15", cache_dir=tmp_path) is None
    repo = tmp_path / "models--stable-diffusion-v1-5--stable-diffusion-v1-5"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "model_index.json").write_text("{}")
    assert cached_hub_config("sd15", cache_dir=tmp_path) == FAMILY_HUB_REPOS["sd15"]
    assert cached_hub_config("sdxl-base", cache_dir=tmp_path) is None


class _StubUNet(torch.nn.Module):
    """Returns ``scale * latent``: epsilon-like for scale 1, v-like for a large negative scale."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(scale))
        self.config = type("Config", (), {"cross_attention_dim": 16, "in_channels": 4})()

    def forward(self, latent: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor) -> Any:
        return type("Output", (), {"sample": self.scale * latent})()


def test_v_prediction_probe_follows_automatic1111() -> None:
    assert not predicts_v(_StubUNet(1.0))
    assert predicts_v(_StubUNet(-3.0))
