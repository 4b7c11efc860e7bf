"""Loading: safetensors only, clear errors for hub and file problems, class from the model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from limner.core.errors import ModelDownloadError, UnsafeModelFormatError, UnsupportedTaskError
from limner.engines.local.device import Placement, choose_placement
from limner.engines.local.loading import load_pipeline, single_file_pipeline_class
from limner.engines.local.model_refs import ModelSource, SourceKind, resolve_model

CPU = Placement(torch.device("cpu"), torch.float32)


def test_pipeline_class_comes_from_model_index(tiny_models: dict[str, Path]) -> None:
    names = {kind: type(load_pipeline(resolve_model(str(tiny_models[kind])), CPU)).__name__ for kind in
             ("txt2img", "inpaint", "edit")}  # fmt: skip
    assert names == {
        "txt2img": "StableDiffusionPipeline",
        "inpaint": "StableDiffusionInpaintPipeline",
        "edit": "StableDiffusionInstructPix2PixPipeline",
    }


def test_unreachable_hub_id_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelDownloadError, match="HF_HUB_OFFLINE") as caught:
        load_pipeline(ModelSource(SourceKind.HUB, "stabilityai/sd-turbo", "stabilityai/sd-turbo"), CPU)
    assert "\n" not in str(caught.value)


def test_folder_with_only_pickle_weights_is_refused(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_models["txt2img"], folder)
    for weights in folder.rglob("*.safetensors"):
        weights.with_suffix(".bin").write_bytes(b"\x80\x04")
        weights.unlink()
    with pytest.raises(UnsafeModelFormatError, match="safetensors"):
        load_pipeline(resolve_model(str(folder)), CPU)


def test_unknown_single_file_layout(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "mystery.safetensors"
    save_file({"some.weight": torch.zeros(1)}, str(path))
    with pytest.raises(UnsupportedTaskError, match="not a full model"):
        single_file_pipeline_class(path)
    lora = tmp_path / "style.safetensors"
    save_file({"lora_unet_down.lora_up.weight": torch.zeros(1)}, str(lora))
    with pytest.raises(UnsupportedTaskError, match="--lora"):
        single_file_pipeline_class(lora)


def test_sd_single_file_layout_is_recognised(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "sd15.safetensors"
    key = "model.diffusion_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight"
    first = "model.diffusion_model.input_blocks.0.0.weight"
    save_file({key: torch.zeros(320, 768), first: torch.zeros(320, 4, 3, 3)}, str(path))
    assert single_file_pipeline_class(path).__name__ == "StableDiffusionPipeline"


def test_placement_defaults_to_cpu_float32_here() -> None:
    placement = choose_placement("cpu", "auto")
    assert (placement.device.type, placement.dtype) == ("cpu", torch.float32)
    assert choose_placement("cpu", "bfloat16").dtype == torch.bfloat16
