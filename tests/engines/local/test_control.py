"""Control on the tiny model: ControlNets and T2I-Adapters built from configs, through the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from limner.config import Settings
from limner.core.errors import InvalidRequestError, ModelNotFoundError, UnsafeModelFormatError, UnsupportedTaskError
from limner.core.progress import ProgressEvent
from limner.core.requests import GenerationRequest
from limner.engines.base import TaskInputs
from limner.engines.local.control import control_pipeline, resolve_control_model
from limner.engines.local.engine import LocalEngine
from limner.engines.local.schedulers import make_scheduler
from limner.testing.tiny_control import build_tiny_controlnet, build_tiny_depth_estimator, build_tiny_t2i_adapter


@pytest.fixture(scope="module")
def controls(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("controls")
    return {
        "controlnet": build_tiny_controlnet(tiny_models["txt2img"], root / "controlnet"),
        "other_controlnet": build_tiny_controlnet(tiny_models["txt2img"], root / "controlnet-2", seed=9),
        "adapter": build_tiny_t2i_adapter(root / "adapter"),
    }


def square(size: int = 64) -> Image.Image:
    picture = Image.new("RGB", (size, size), "white")
    picture.paste((0, 0, 0), (size // 4, size // 4, 3 * size // 4, 3 * size // 4))
    return picture


def disc(size: int = 64) -> Image.Image:
    from PIL import ImageDraw

    picture = Image.new("RGB", (size, size), "black")
    ImageDraw.Draw(picture).ellipse((8, 8, size - 8, size - 8), fill="white")
    return picture


def request(*controls: dict[str, Any], **fields: Any) -> GenerationRequest:
    values: dict[str, Any] = {"prompt": "a red house", "steps": 2, "seed": 3, "width": 64, "height": 64}
    values.update(fields)
    values["controls"] = [{"image": f"control-{index}.png", **control} for index, control in enumerate(controls)]
    return GenerationRequest.model_validate(values)


def pixels(result: Any) -> np.ndarray:
    return np.asarray(result.images[0].image).astype(int)


def test_weight_zero_equals_no_control(engine: LocalEngine, controls: dict[str, Path]) -> None:
    plain = engine.run(request())
    zero = engine.run(
        request({"model": str(controls["controlnet"]), "weight": 0.0}), TaskInputs(control_images=(square(),))
    )
    full = engine.run(
        request({"model": str(controls["controlnet"]), "weight": 1.0}), TaskInputs(control_images=(square(),))
    )
    assert np.array_equal(pixels(zero), pixels(plain))
    assert np.abs(pixels(full) - pixels(plain)).max() > 10
    assert full.images[0].record.pipeline == "StableDiffusionControlNetPipeline"
    assert full.images[0].record.request.controls[0].weight == 1.0


def test_control_picture_steers_the_output(engine: LocalEngine, controls: dict[str, Path]) -> None:
    spec = {"model": str(controls["controlnet"]), "type": "none"}
    one = engine.run(request(spec), TaskInputs(control_images=(square(),)))
    other = engine.run(request(spec), TaskInputs(control_images=(disc(),)))
    assert np.abs(pixels(one) - pixels(other)).max() > 10


def test_two_controls_at_once(engine: LocalEngine, controls: dict[str, Path]) -> None:
    first = {"model": str(controls["controlnet"]), "weight": 1.0}
    second = {"model": str(controls["other_controlnet"]), "type": "scribble", "weight": 0.8, "start": 0.5}
    pictures = TaskInputs(control_images=(square(), disc()))
    both = engine.run(request(first, second), pictures)
    alone = engine.run(request(first), TaskInputs(control_images=(square(),)))
    assert not np.array_equal(pixels(both), pixels(alone))
    assert len(both.control_images) == 2
    assert all(picture.size == (64, 64) for picture in both.control_images)
    # the second control off (weight 0) is the first alone
    off = engine.run(request(first, {**second, "weight": 0.0}), pictures)
    assert np.array_equal(pixels(off), pixels(alone))


def test_control_acts_only_in_its_step_range(engine: LocalEngine, controls: dict[str, Path]) -> None:
    model = str(controls["controlnet"])
    plain = engine.run(request(steps=4))
    late = engine.run(request({"model": model, "start": 0.5}, steps=4), TaskInputs(control_images=(square(),)))
    early = engine.run(request({"model": model, "end": 0.5}, steps=4), TaskInputs(control_images=(square(),)))
    assert not np.array_equal(pixels(late), pixels(plain))
    assert not np.array_equal(pixels(late), pixels(early))


def test_t2i_adapter(engine: LocalEngine, controls: dict[str, Path]) -> None:
    events: list[ProgressEvent] = []
    plain = engine.run(request())
    zero = engine.run(
        request({"model": str(controls["adapter"]), "weight": 0.0}), TaskInputs(control_images=(square(),))
    )
    full = engine.run(request({"model": str(controls["adapter"]), "type": "lineart"}),
                      TaskInputs(control_images=(square(),)), events.append)  # fmt: skip
    assert np.array_equal(pixels(zero), pixels(plain))
    assert np.abs(pixels(full) - pixels(plain)).max() > 10
    assert full.images[0].record.pipeline == "StableDiffusionAdapterPipeline"
    assert [event.step for event in events] == [1, 2]  # step progress through the adapter pipeline's old callback
    two = engine.run(request({"model": str(controls["adapter"])}, {"model": str(controls["adapter"]), "weight": 0.5}),
                     TaskInputs(control_images=(square(), disc())))  # fmt: skip
    assert two.images[0].record.pipeline == "StableDiffusionAdapterPipeline"


def test_img2img_and_inpaint_with_a_control(engine: LocalEngine, controls: dict[str, Path]) -> None:
    model = str(controls["controlnet"])
    image = disc()
    img2img = engine.run(request({"model": model}, task="img2img", init_image="in.png", strength=0.8),
                         TaskInputs(init_image=image, control_images=(square(),)))  # fmt: skip
    assert img2img.images[0].record.pipeline == "StableDiffusionControlNetImg2ImgPipeline"
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    inpaint = engine.run(request({"model": model}, task="inpaint", init_image="in.png", mask_image="m.png"),
                         TaskInputs(init_image=image, mask_image=mask, control_images=(square(),)))  # fmt: skip
    assert inpaint.images[0].record.pipeline == "StableDiffusionControlNetInpaintPipeline"
    kept = np.asarray(inpaint.images[0].image)[:, 40:]
    assert np.array_equal(kept, np.asarray(image)[:, 40:])
    with pytest.raises(UnsupportedTaskError, match="T2I-Adapters guide text-to-image only"):
        engine.run(request({"model": str(controls["adapter"])}, task="img2img", init_image="in.png"),
                   TaskInputs(init_image=image, control_images=(square(),)))  # fmt: skip


def _storages(pipeline: Any) -> dict[int, int]:
    """Bytes of every distinct tensor storage held by a pipeline's modules."""
    found: dict[int, int] = {}
    for component in pipeline.components.values():
        if isinstance(component, torch.nn.Module):
            for tensor in [*component.parameters(), *component.buffers()]:
                found[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
    return found


def test_control_pipeline_shares_the_base_weights(engine: LocalEngine, controls: dict[str, Path]) -> None:
    engine.run(request({"model": str(controls["controlnet"])}), TaskInputs(control_images=(square(),)))
    base = engine.model_slot().pipeline
    from diffusers import ControlNetModel

    controlnet = ControlNetModel.from_pretrained(str(controls["controlnet"]), use_safetensors=True)
    derived = control_pipeline(base, request().task, make_scheduler(base.scheduler, None), [controlnet], "tiny")
    assert derived.unet is base.unet
    assert derived.vae is base.vae
    assert derived.text_encoder is base.text_encoder
    assert next(derived.unet.parameters()).data_ptr() == next(base.unet.parameters()).data_ptr()
    base_bytes, control_bytes = _storages(base), _storages(derived)
    net_bytes = sum(p.untyped_storage().nbytes() for p in [*controlnet.parameters(), *controlnet.buffers()])
    assert sum(control_bytes.values()) == sum(base_bytes.values()) + net_bytes  # nothing of the base copied
    before = set(engine.loaded_controls())
    engine.run(request({"model": str(controls["controlnet"])}), TaskInputs(control_images=(disc(),)))
    assert set(engine.loaded_controls()) == before  # loaded once, reused


def test_control_size_follows_the_picture_when_none_is_given(engine: LocalEngine, controls: dict[str, Path]) -> None:
    fields = {
        "prompt": "a red house",
        "steps": 1,
        "seed": 3,
        "controls": [{"image": "c.png", "model": str(controls["controlnet"])}],
    }
    result = engine.run(GenerationRequest.model_validate(fields), TaskInputs(control_images=(square(48),)))
    assert result.images[0].image.size == (48, 48)


def test_refusals(engine: LocalEngine, controls: dict[str, Path], tmp_path: Path) -> None:
    inputs = TaskInputs(control_images=(square(),))
    with pytest.raises(InvalidRequestError, match="names no model"):
        engine.validate(request({}), inputs)
    with pytest.raises(InvalidRequestError, match="OpenPose"):
        engine.validate(request({"model": str(controls["controlnet"]), "type": "pose"}), inputs)
    with pytest.raises(InvalidRequestError, match="LIMNER_DEPTH_MODEL"):
        engine.validate(request({"model": str(controls["controlnet"]), "type": "depth"}), inputs)
    with pytest.raises(InvalidRequestError, match="control pictures"):
        engine.validate(request({"model": str(controls["controlnet"])}), TaskInputs())
    with pytest.raises(UnsafeModelFormatError, match="pickle"):
        engine.validate(request({"model": str(tmp_path / "control.pth")}), inputs)
    with pytest.raises(ModelNotFoundError):
        engine.validate(request({"model": str(tmp_path / "missing.safetensors")}), inputs)
    with pytest.raises(InvalidRequestError, match="cannot be mixed"):
        engine.run(request({"model": str(controls["controlnet"])}, {"model": str(controls["adapter"])}),
                   TaskInputs(control_images=(square(), square())))  # fmt: skip
    assert engine.batch_key(request({"model": str(controls["controlnet"])})) is None


def test_pickle_weights_in_a_folder_are_refused(engine: LocalEngine, controls: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "pickled-controlnet"
    folder.mkdir()
    (folder / "config.json").write_text((controls["controlnet"] / "config.json").read_text())
    torch.save({"x": torch.zeros(1)}, folder / "diffusion_pytorch_model.bin")
    with pytest.raises(UnsafeModelFormatError, match="safetensors"):
        engine.run(request({"model": str(folder)}), TaskInputs(control_images=(square(),)))


def test_resolve_control_model_forms(controls: dict[str, Path]) -> None:
    assert resolve_control_model(str(controls["controlnet"])).kind.value == "folder"
    hub = resolve_control_model("lllyasviel/control_v11p_sd15_canny")
    assert (hub.kind.value, hub.location, hub.subfolder) == ("hub", "lllyasviel/control_v11p_sd15_canny", None)
    sub = resolve_control_model("owner/repo/canny")
    assert (sub.location, sub.subfolder) == ("owner/repo", "canny")
    with pytest.raises(ModelNotFoundError):
        resolve_control_model("not a model")


def test_depth_control_through_the_configured_estimator(
    settings: Settings, controls: dict[str, Path], tmp_path: Path
) -> None:
    estimator = build_tiny_depth_estimator(tmp_path / "depth")
    engine = LocalEngine(settings.model_copy(update={"depth_model": str(estimator)}))
    result = engine.run(request({"model": str(controls["controlnet"]), "type": "depth"}),
                        TaskInputs(control_images=(disc(),)))  # fmt: skip
    depth = np.asarray(result.control_images[0].convert("L"))
    assert depth.shape == (64, 64)
    assert (depth.min(), depth.max()) == (0, 255)  # stretched to the full range
    assert engine.loaded_controls() == ["controlnet"]
