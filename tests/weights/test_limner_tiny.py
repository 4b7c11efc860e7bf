"""The shipped limner-tiny weights load as a standard pipeline and follow colour words.

Why here: these are the weights every zero-download feature relies on; a re-export that breaks
loading or loses text following must fail CI. Small version of the benchmark's colour bar.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import AutoPipelineForImage2Image, DiffusionPipeline, StableDiffusionPipeline

from limner.weights import LIMNER_TINY, LIMNER_TINY_DEFAULTS

pytestmark = pytest.mark.skipif(
    not (LIMNER_TINY / "model_index.json").exists(), reason="limner-tiny weights not exported yet"
)


@pytest.fixture(scope="module")
def pipe() -> StableDiffusionPipeline:
    torch.set_num_threads(1)
    pipeline = DiffusionPipeline.from_pretrained(str(LIMNER_TINY), use_safetensors=True)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def _image(pipe: StableDiffusionPipeline, prompt: str, seed: int = 0) -> np.ndarray:
    generator = torch.Generator().manual_seed(seed)
    result = pipe(prompt, generator=generator, output_type="np", **LIMNER_TINY_DEFAULTS)
    return np.asarray(result.images[0], dtype=np.float64)


def _redness_minus_blueness(image: np.ndarray) -> float:
    """Mean (R - B) over pixels that are clearly coloured (not the white background)."""
    saturation = image.max(-1) - image.min(-1)
    coloured = image[saturation > 0.25]
    return float((coloured[:, 0] - coloured[:, 2]).mean()) if len(coloured) else 0.0


def test_loads_as_standard_fp32_pipeline(pipe: StableDiffusionPipeline) -> None:
    assert isinstance(pipe, StableDiffusionPipeline)
    assert pipe.unet.dtype == torch.float32
    assert pipe.text_encoder.dtype == torch.float32
    assert not list(LIMNER_TINY.rglob("*.bin"))
    size = sum(p.stat().st_size for p in LIMNER_TINY.rglob("*") if p.is_file())
    assert size <= 30 * 1024 * 1024


def test_red_heart_is_redder_than_blue_heart(pipe: StableDiffusionPipeline) -> None:
    """The colour word moves the picture its way: same seed, "red" -> "blue" shifts R-B down by far.

    Paired by seed, so the check is on what the word does; the strict per-image colour bar (hue
    names, 5 prompts) is the benchmark's. Measured on the shipped weights: shifts of 1.53 and 1.42.
    """
    red = [_redness_minus_blueness(_image(pipe, "red heart", seed)) for seed in range(2)]
    blue = [_redness_minus_blueness(_image(pipe, "blue heart", seed)) for seed in range(2)]
    assert all(r - b > 0.4 for r, b in zip(red, blue, strict=True)), (red, blue)
    assert np.mean(red) > 0.1
    assert max(blue) < -0.1


def test_blue_and_purple_are_told_apart_whatever_the_seed(pipe: StableDiffusionPipeline) -> None:
    """The near pair: same seed, "purple" -> "blue" shifts R-B down by far, for every seed tried.

    Weights trained without offset noise failed this: the seed's starting noise set the overall hue,
    so seeds 0 and 3 drew a purple "blue heart" (shifts 0.31 and -0.13). Measured on the shipped
    weights: 0.74, 0.61, 0.63, 0.59.
    """
    for seed in range(4):
        purple = _redness_minus_blueness(_image(pipe, "purple heart", seed))
        blue = _redness_minus_blueness(_image(pipe, "blue heart", seed))
        assert purple - blue > 0.4, (seed, purple, blue)


def test_img2img_at_low_strength_keeps_structure(pipe: StableDiffusionPipeline) -> None:
    source = _image(pipe, "red heart")
    img2img = AutoPipelineForImage2Image.from_pipe(pipe)
    result = img2img(
        "blue heart",
        image=torch.from_numpy(source).permute(2, 0, 1)[None].float() * 2 - 1,
        strength=0.3,
        generator=torch.Generator().manual_seed(1),
        output_type="np",
        num_inference_steps=LIMNER_TINY_DEFAULTS["num_inference_steps"],
    ).images[0]
    other = _image(pipe, "an emoji of rocket", seed=3)
    assert np.abs(result - source).mean() < np.abs(other - source).mean() / 2


def test_inpaint_changes_only_the_masked_region() -> None:
    """limner-tiny through the engine: the unmasked half is kept exactly, the masked half is redrawn."""
    import numpy as np
    from PIL import Image

    from limner.config import Settings
    from limner.core.requests import GenerationRequest, Task
    from limner.engines.base import TaskInputs
    from limner.engines.local.engine import LocalEngine

    engine = LocalEngine(Settings(default_model="limner-tiny", device="cpu", _env_file=None))  # type: ignore[call-arg]
    photo = Image.new("RGB", (64, 64), (240, 200, 40))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (32, 0, 64, 64))
    request = GenerationRequest(task=Task.INPAINT, prompt="an emoji of a blue heart", init_image="p", mask_image="m",
                                strength=1.0, steps=10, seed=1)  # fmt: skip
    result = engine.run(request, TaskInputs(init_image=photo, mask_image=mask)).images[0].image
    before, after = np.asarray(photo, int), np.asarray(result, int)
    assert np.array_equal(after[:, :32], before[:, :32])
    assert np.abs(after[:, 32:] - before[:, 32:]).mean() > 20
