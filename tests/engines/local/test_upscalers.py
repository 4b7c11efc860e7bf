"""Upscaler models: safetensors only, spandrel's architectures at tiny sizes, tiled runs with flat memory."""

from __future__ import annotations

import itertools
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from limner.core.errors import ModelNotFoundError, UnsafeModelFormatError, UnsupportedTaskError
from limner.engines.local.device import choose_placement
from limner.engines.local.spandrel_import import import_spandrel
from limner.engines.local.tiling import run_tiled, tile_starts
from limner.engines.local.upscalers import UpscalerKind, load_pixel_upscaler, resolve_upscaler
from limner.testing.tiny_models import build_tiny_upscaler

CPU = choose_placement("cpu", "float32")


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    return Image.fromarray((np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def upscalers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("upscalers")
    return {
        "esrgan": build_tiny_upscaler(root / "tiny-esrgan-x2.safetensors", "esrgan", 2),
        "esrgan4": build_tiny_upscaler(root / "tiny-esrgan-x4.safetensors", "esrgan", 4),
        "compact": build_tiny_upscaler(root / "tiny-compact-x2.safetensors", "compact", 2),
    }


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".ckpt", ".bin"])
def test_pickle_files_are_refused_naming_the_risk_and_the_fix(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"4x-UltraSharp{suffix}"
    torch.save({"weight": torch.zeros(1)}, path)
    with pytest.raises(UnsafeModelFormatError) as caught:
        resolve_upscaler(str(path))
    assert "pickle" in caught.value.message
    assert "safetensors" in caught.value.message
    assert "weights_only=True" in caught.value.message  # how to convert
    assert caught.value.param == "upscaler"


def test_a_pickle_named_safetensors_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sneaky.safetensors"
    torch.save({"weight": torch.zeros(1)}, path)
    with pytest.raises(UnsafeModelFormatError):
        resolve_upscaler(str(path))


def test_unknown_references_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no such upscaler file"):
        resolve_upscaler(str(tmp_path / "missing.safetensors"))
    with pytest.raises(ModelNotFoundError, match="ESRGAN-family"):
        resolve_upscaler("not a model")
    hub = resolve_upscaler("owner/repo/models/4x.safetensors")
    assert (hub.kind, hub.repo, hub.location) == (UpscalerKind.PIXEL, "owner/repo", "models/4x.safetensors")
    assert resolve_upscaler("stabilityai/stable-diffusion-x4-upscaler").kind is UpscalerKind.DIFFUSION


def test_spandrel_imports_without_leaving_a_fake_torchvision() -> None:
    spandrel = import_spandrel()
    assert "ESRGAN" in {str(support.architecture.id) for support in spandrel.MAIN_REGISTRY.architectures("insertion")}
    assert "torchvision" not in sys.modules or hasattr(sys.modules["torchvision"], "__file__")


def test_a_state_dict_that_is_no_upscaler_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "lora.safetensors"
    save_file({"lora_unet_down.weight": torch.zeros(4, 4)}, str(path))
    with pytest.raises(UnsupportedTaskError, match="no architecture"):
        load_pixel_upscaler(resolve_upscaler(str(path)), CPU)


@pytest.mark.parametrize(("name", "architecture", "scale"), [("esrgan", "ESRGAN", 2), ("esrgan4", "ESRGAN", 4),
                                                             ("compact", "Compact", 2)])  # fmt: skip
def test_tiny_models_load_with_their_architecture_and_scale(
    upscalers: dict[str, Path], name: str, architecture: str, scale: int
) -> None:
    model = load_pixel_upscaler(resolve_upscaler(str(upscalers[name])), CPU)
    assert (model.architecture, model.scale) == (architecture, scale)
    assert model.run_once(noise(12, 10), None).size == (12 * scale, 10 * scale)


def test_the_asked_scale_is_met_by_passes_then_lanczos(upscalers: dict[str, Path]) -> None:
    model = load_pixel_upscaler(resolve_upscaler(str(upscalers["compact"])), CPU)
    assert model.upscale(noise(10, 8), 2, None).size == (20, 16)
    assert model.upscale(noise(10, 8), 3, None).size == (30, 24)  # two x2 passes, then down to x3
    assert model.upscale(noise(10, 8), 1.5, None).size == (15, 12)


def test_tiled_equals_untiled_within_tolerance(upscalers: dict[str, Path]) -> None:
    model = load_pixel_upscaler(resolve_upscaler(str(upscalers["esrgan"])), CPU)
    picture = noise(40, 36)
    whole = np.asarray(model.run_once(picture, None), dtype=np.int16)
    tiled = np.asarray(model.run_once(picture, 16), dtype=np.int16)
    assert whole.shape == tiled.shape == (72, 80, 3)
    difference = np.abs(whole - tiled)
    assert difference.mean() < 0.5
    assert difference.max() <= 16


def test_overlap_weights_sum_to_one() -> None:
    """With a model that only repeats pixels, every tiling gives exactly the untiled result."""

    def nearest(tensor: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(tensor, scale_factor=3, mode="nearest")

    picture = noise(70, 45)
    expected = np.asarray(picture.resize((210, 135), Image.Resampling.NEAREST), dtype=np.int16)
    for tile, overlap in ((16, 4), (24, 6), (32, 0), (64, 16)):
        result = np.asarray(run_tiled(picture, nearest, 3, tile, overlap), dtype=np.int16)
        assert np.abs(result - expected).max() <= 1, (tile, overlap)
    starts = tile_starts(100, 32, 8)
    assert starts[0] == 0
    assert starts[-1] == 100 - 32
    assert all(later - earlier <= 32 - 8 for earlier, later in itertools.pairwise(starts))


def test_tiled_upscaling_of_2048_pixels_keeps_memory_flat() -> None:
    """Bound: the uint8 result and input plus two float32 bands (tile x scale rows of the output).

    For 2048x2048 at x2 with 256 px tiles: 48 MiB result + 12 MiB input + 2 x 24 MiB = 108 MiB (measured:
    96 MiB); the same picture as one tile peaks at 584 MiB, before the model's own activations. The model
    sees one tile at a time (the largest tensor, measured below). tracemalloc counts numpy's buffers.
    """
    largest: list[int] = [0]

    def nearest(tensor: torch.Tensor) -> torch.Tensor:
        largest[0] = max(largest[0], tensor.numel())
        return torch.nn.functional.interpolate(tensor, scale_factor=2, mode="nearest")

    picture = noise(2048, 2048)
    tracemalloc.start()
    try:
        result = run_tiled(picture, nearest, 2, tile=256, overlap=16)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    output_bytes, input_bytes = 4096 * 4096 * 3, 2048 * 2048 * 3
    band_bytes = 256 * 2 * 4096 * 3 * 4
    assert result.size == (4096, 4096)
    assert largest[0] == 3 * 256 * 256
    assert peak <= output_bytes + input_bytes + 2 * band_bytes, f"peak {peak / 2**20:.0f} MiB"


def test_a_missing_spandrel_says_how_to_install_it(upscalers: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import limner.engines.local.upscalers as module

    def no_spandrel() -> None:
        raise ModuleNotFoundError("No module named 'spandrel'")

    monkeypatch.setattr(module, "import_spandrel", no_spandrel)
    with pytest.raises(UnsupportedTaskError, match="pip install --no-deps 'spandrel"):
        load_pixel_upscaler(resolve_upscaler(str(upscalers["compact"])), CPU)
