"""The engine's finishing tasks on tiny models: hires fix, outpaint and upscale, through ``run``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from limner.config import Settings
from limner.core.errors import InvalidRequestError, UnsafeModelFormatError, UnsupportedTaskError
from limner.core.progress import ProgressEvent
from limner.core.requests import GenerationRequest
from limner.engines.base import TaskInputs
from limner.engines.local.engine import LocalEngine
from limner.engines.local.upscalers import DiffusionUpscale, diffusion_upscale
from limner.testing.tiny_models import build_tiny_upscaler, build_tiny_x4_upscaler


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    return Image.fromarray((np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def upscaler(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_upscaler(tmp_path_factory.mktemp("upscalers") / "tiny-compact-x2.safetensors", "compact", 2)


@pytest.mark.parametrize("how", ["latent", "lanczos", "model"])
def test_hires_fix_gives_the_asked_size_in_two_passes(engine: LocalEngine, upscaler: Path, how: str) -> None:
    events: list[ProgressEvent] = []
    request = GenerationRequest(prompt="a fox", steps=2, seed=3, width=32, height=32, hires_scale=2,
                                hires_upscaler=str(upscaler) if how == "model" else how, hires_steps=2)  # fmt: skip
    result = engine.run(request, progress=events.append)
    image = result.images[0]
    assert image.image.size == (64, 64)
    assert (image.record.width, image.record.height) == (64, 64)
    assert image.record.pipeline.endswith("+ hires fix (StableDiffusionImg2ImgPipeline)")
    assert image.record.request.hires_scale == 2
    assert [event.step for event in events] == [1, 2, 3]  # 2 steps, then int(2 * 0.5) refining step
    assert {event.total_steps for event in events} == {3}


def test_latent_hires_fix_follows_the_vae_scale_of_limner_tiny(engine: LocalEngine) -> None:
    """limner-tiny's VAE has three blocks: one latent is 4 pixels, not SD's 8."""
    request = GenerationRequest(model="limner-tiny", prompt="an emoji of a red apple", steps=2, seed=3, width=32,
                                height=32, hires_scale=2)  # fmt: skip
    assert engine.run(request).images[0].image.size == (64, 64)


def test_hires_fix_keeps_each_seed(engine: LocalEngine) -> None:
    fields = {"prompt": "a fox", "steps": 2, "width": 32, "height": 32, "hires_scale": 1.5}
    pair = engine.run(GenerationRequest(**fields, seed=5, num_images=2))
    alone = engine.run(GenerationRequest(**fields, seed=6))
    assert [item.image.size for item in pair.images] == [(48, 48), (48, 48)]
    second = np.asarray(pair.images[1].image, dtype=np.int16)
    assert np.abs(second - np.asarray(alone.images[0].image, dtype=np.int16)).max() <= 2


def test_hires_fix_over_the_pixel_cap_is_refused(engine: LocalEngine) -> None:
    request = GenerationRequest(prompt="x", width=1024, height=1024, hires_scale=4)
    with pytest.raises(InvalidRequestError, match="hires fix makes 4096x4096"):
        engine.validate(request, TaskInputs())


def test_hires_fix_refuses_a_pickle_upscaler(engine: LocalEngine, tmp_path: Path) -> None:
    request = GenerationRequest(prompt="x", width=32, height=32, hires_scale=2, hires_upscaler="RealESRGAN_x4.pth")
    with pytest.raises(UnsafeModelFormatError) as caught:
        engine.validate(request, TaskInputs())
    assert caught.value.param == "hires_upscaler"


def test_outpaint_keeps_the_original_pixels_and_pads_the_canvas(engine: LocalEngine) -> None:
    picture = noise(36, 40)
    request = GenerationRequest(task="outpaint", prompt="sky", steps=2, seed=1, init_image="photo.png",
                                outpaint={"left": 8, "top": 16})  # fmt: skip
    result = engine.run(request, TaskInputs(init_image=picture))
    output = result.images[0].image
    assert output.size == (48, 56)  # 36 + 8 (+4 to a multiple of 8) by 40 + 16
    assert np.array_equal(np.asarray(output)[16:56, 12:48], np.asarray(picture))
    assert not np.array_equal(np.asarray(output)[0:16, 0:12], np.zeros((16, 12, 3)))
    assert result.images[0].record.pipeline.startswith("StableDiffusionInpaintPipeline")


def test_outpaint_over_the_pixel_cap_is_refused(settings: Settings) -> None:
    small = LocalEngine(settings.model_copy(update={"max_pixels": 64 * 64}))
    request = GenerationRequest(task="outpaint", init_image="a.png", outpaint={"right": 32})
    with pytest.raises(InvalidRequestError, match="outpainted canvas would be 96x64") as caught:
        small.validate(request, TaskInputs(init_image=noise(64, 64)))
    assert caught.value.param == "outpaint"


def test_upscale_runs_no_diffusion_model_and_records_the_upscaler(engine: LocalEngine, upscaler: Path) -> None:
    events: list[ProgressEvent] = []
    request = GenerationRequest(task="upscale", init_image="photo.png", upscaler=str(upscaler), tile_size=64, seed=1)
    result = engine.run(request, TaskInputs(init_image=noise(100, 70)), progress=events.append)
    image = result.images[0]
    assert image.image.size == (200, 140)  # the model's own x2
    assert image.record.pipeline == "Compact x2 (spandrel)"
    assert image.record.model_name == "tiny-compact-x2"
    assert image.record.request.upscaler == str(upscaler)
    assert events[-1].step == events[-1].total_steps == 4  # 2 x 2 tiles
    tripled = engine.run(request.model_copy(update={"upscale_factor": 3.0}), TaskInputs(init_image=noise(20, 10)))
    assert tripled.images[0].image.size == (60, 30)


def test_upscale_beyond_its_allowance_is_refused(settings: Settings, upscaler: Path) -> None:
    small = LocalEngine(settings.model_copy(update={"max_pixels": 64 * 64}))
    request = GenerationRequest(task="upscale", init_image="a.png", upscaler=str(upscaler), upscale_factor=8)
    with pytest.raises(InvalidRequestError, match="16 times its pixel cap"):
        small.validate(request, TaskInputs(init_image=noise(64, 64)))


def test_the_sd_x4_upscaler_runs_from_a_diffusers_folder(engine: LocalEngine, tmp_path: Path) -> None:
    folder = build_tiny_x4_upscaler(tmp_path / "tiny-x4")
    request = GenerationRequest(task="upscale", init_image="a.png", upscaler=str(folder), prompt="a fox", steps=2,
                                seed=1)  # fmt: skip
    result = engine.run(request, TaskInputs(init_image=noise(16, 12)))
    image = result.images[0]
    assert image.image.size == (64, 48)
    assert image.record.pipeline == "StableDiffusionUpscalePipeline"
    assert image.record.model_name == "tiny-x4"
    tiles: list[tuple[int, int]] = []
    call = DiffusionUpscale(prompt="a fox", negative_prompt="", steps=2, guidance_scale=7.0, seed=1)
    pipeline = engine.model_slot(str(folder)).pipeline
    tiled = diffusion_upscale(pipeline, noise(28, 12), 4, call, 16, lambda done, total: tiles.append((done, total)))
    assert tiled.size == (112, 48)
    assert tiles[-1] == (2, 2)  # two tiles across, each from the same seed


def test_a_diffusion_model_that_is_no_upscaler_is_refused(engine: LocalEngine, tiny_models: dict[str, Path]) -> None:
    request = GenerationRequest(task="upscale", init_image="a.png", upscaler=str(tiny_models["txt2img"]))
    with pytest.raises(UnsupportedTaskError, match="is not an upscaler"):
        engine.run(request, TaskInputs(init_image=noise(16, 12)))
