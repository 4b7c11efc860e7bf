"""Control on a tiny SDXL model: ControlNet txt2img, img2img and inpaint pipelines, and the SDXL T2I-Adapter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from limner.config import Settings
from limner.core.requests import GenerationRequest
from limner.engines.base import TaskInputs
from limner.engines.local.engine import LocalEngine
from limner.testing.tiny_control import build_tiny_controlnet, build_tiny_sdxl_pipeline, build_tiny_t2i_adapter


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalEngine, Path, Path]:
    root = tmp_path_factory.mktemp("sdxl-control")
    build_tiny_sdxl_pipeline(root / "sdxl")
    engine = LocalEngine(Settings(default_model=str(root / "sdxl"), device="cpu", _env_file=None))  # type: ignore[call-arg]
    return engine, build_tiny_controlnet(root / "sdxl", root / "controlnet"), build_tiny_t2i_adapter(root / "adapter")


def edges() -> Image.Image:
    picture = Image.new("RGB", (64, 64), "white")
    picture.paste((0, 0, 0), (16, 16, 48, 48))
    return picture


def run(engine: LocalEngine, model: Path, **fields: object) -> tuple[str, np.ndarray]:
    values: dict[str, object] = {"prompt": "a house", "steps": 2, "seed": 1, "width": 64, "height": 64, **fields}
    values["controls"] = [{"image": "c.png", "model": str(model), **dict(values.pop("control", {}))}]  # type: ignore[call-overload]
    inputs = TaskInputs(init_image=edges() if "init_image" in values else None,
                        mask_image=Image.new("L", (64, 64), 255) if "mask_image" in values else None,
                        control_images=(edges(),))  # fmt: skip
    result = engine.run(GenerationRequest.model_validate(values), inputs)
    return result.images[0].record.pipeline, np.asarray(result.images[0].image)


def test_sdxl_controlnet_for_every_task(sdxl: tuple[LocalEngine, Path, Path]) -> None:
    engine, controlnet, _ = sdxl
    assert run(engine, controlnet)[0] == "StableDiffusionXLControlNetPipeline"
    assert run(engine, controlnet, task="img2img", init_image="a.png", strength=1.0)[0] == (
        "StableDiffusionXLControlNetImg2ImgPipeline"
    )
    assert run(engine, controlnet, task="inpaint", init_image="a.png", mask_image="m.png", strength=1.0)[0] == (
        "StableDiffusionXLControlNetInpaintPipeline"
    )
    plain = np.asarray(
        engine.run(GenerationRequest(prompt="a house", steps=2, seed=1, width=64, height=64)).images[0].image
    )
    assert np.array_equal(run(engine, controlnet, control={"weight": 0.0})[1], plain)


def test_sdxl_adapter_acts_for_its_fraction_of_the_steps(sdxl: tuple[LocalEngine, Path, Path]) -> None:
    engine, _, adapter = sdxl
    name, whole = run(engine, adapter, steps=4)
    assert name == "StableDiffusionXLAdapterPipeline"
    _, half = run(engine, adapter, steps=4, control={"end": 0.5})  # adapter_conditioning_factor 0.5
    assert not np.array_equal(whole, half)
