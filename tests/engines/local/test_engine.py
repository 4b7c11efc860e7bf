"""The local engine end to end on tiny models loaded through the real loading path."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DPMSolverMultistepScheduler
from PIL import Image

from limner.config import Settings
from limner.core.errors import (
    GenerationCanceledError,
    InvalidRequestError,
    ModelNotFoundError,
    UnsafeModelFormatError,
    UnsupportedTaskError,
)
from limner.core.progress import CancelToken, ProgressEvent
from limner.core.requests import GenerationRequest, LoraSpec, SchedulerName, Task
from limner.engines.base import TaskInputs
from limner.engines.local.engine import LocalEngine


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def txt2img(**fields: object) -> GenerationRequest:
    base: dict[str, object] = {"prompt": "a red fox", "steps": 2, "seed": 7, "width": 64, "height": 64}
    base.update(fields)
    return GenerationRequest.model_validate(base)


def test_same_seed_gives_identical_images(engine: LocalEngine) -> None:
    first = engine.run(txt2img(num_images=2))
    second = engine.run(txt2img(num_images=2))
    assert first.seeds == second.seeds == [7, 8]
    for a, b in zip(first.images, second.images, strict=True):
        assert a.image.tobytes() == b.image.tobytes()


def test_each_image_of_a_batch_follows_its_own_seed(engine: LocalEngine) -> None:
    batch = engine.run(txt2img(num_images=2))
    single = engine.run(txt2img(seed=8))
    assert not np.array_equal(pixels(batch.images[0].image), pixels(batch.images[1].image))
    # Batched matmuls may differ in the last bit; the picture is the same.
    assert np.abs(pixels(batch.images[1].image) - pixels(single.images[0].image)).max() <= 2


def test_missing_seed_is_drawn_and_recorded(engine: LocalEngine) -> None:
    result = engine.run(txt2img(seed=None))
    record = result.images[0].record
    assert record.request.seed == record.seed
    again = engine.run(txt2img(seed=record.seed))
    assert again.images[0].image.tobytes() == result.images[0].image.tobytes()


def test_prompt_changes_the_image(engine: LocalEngine) -> None:
    fox = engine.run(txt2img(prompt="a red fox")).images[0].image
    boat = engine.run(txt2img(prompt="a blue boat on a lake")).images[0].image
    assert fox.tobytes() != boat.tobytes()


def test_record_holds_every_parameter(engine: LocalEngine, settings: Settings) -> None:
    result = engine.run(txt2img(negative_prompt="blurry", guidance_scale=4.5, scheduler="ddim"))
    record = result.images[0].record
    assert record.request.model == settings.default_model
    assert record.request.negative_prompt == "blurry"
    assert record.request.scheduler is SchedulerName.DDIM
    assert record.scheduler == "DDIMScheduler"
    assert (record.width, record.height) == (64, 64)
    assert record.pipeline == "StableDiffusionPipeline"
    assert record.timings.inference_s > 0


@pytest.mark.parametrize("name", list(SchedulerName))
def test_every_scheduler_runs_and_is_used(engine: LocalEngine, name: SchedulerName) -> None:
    result = engine.run(txt2img(scheduler=name.value, steps=3))
    assert result.images[0].image.size == (64, 64)
    assert result.images[0].record.request.scheduler is name


def test_schedulers_change_the_output(engine: LocalEngine) -> None:
    euler = engine.run(txt2img(scheduler="euler", steps=4)).images[0].image
    dpm = engine.run(txt2img(scheduler="dpm++_2m_karras", steps=4)).images[0].image
    assert euler.tobytes() != dpm.tobytes()


def test_scheduler_of_the_loaded_model_is_never_mutated(engine: LocalEngine) -> None:
    slot = engine.model_slot()
    before = type(slot.pipeline.scheduler)
    engine.run(txt2img(scheduler="dpm++_2m", steps=3))
    assert type(slot.pipeline.scheduler) is before
    assert slot.pipeline.scheduler.timesteps is None or len(slot.pipeline.scheduler.timesteps) != 3


def test_a_kind_of_scheduler_is_built_from_config_once_per_model(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, every run rebuilt its scheduler with ``from_config`` (about 1.1 ms); now each run gets a
    copy of one built the first time, and draws the same pixels as that first run."""
    first = engine.run(txt2img(scheduler="dpm++_2m", steps=3, seed=4)).images[0].image
    built: list[object] = []
    original = DPMSolverMultistepScheduler.from_config.__func__  # type: ignore[attr-defined]

    def counted(cls: type, *args: object, **kwargs: object) -> object:
        built.append(cls)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(DPMSolverMultistepScheduler, "from_config", classmethod(counted))
    again = [engine.run(txt2img(scheduler="dpm++_2m", steps=3, seed=4)).images[0].image for _ in range(2)]
    assert built == []
    assert all(image.tobytes() == first.tobytes() for image in again)


def test_concurrent_runs_with_different_schedulers_match_serial_runs(engine: LocalEngine) -> None:
    requests = [txt2img(scheduler="euler", steps=4, seed=1), txt2img(scheduler="dpm++_2m", steps=6, seed=2)]
    serial = [engine.run(request).images[0].image.tobytes() for request in requests]
    results: dict[int, bytes] = {}

    def work(index: int) -> None:
        results[index] = engine.run(requests[index]).images[0].image.tobytes()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[0], results[1]] == serial


def test_progress_reports_every_step(engine: LocalEngine) -> None:
    events: list[ProgressEvent] = []
    engine.run(txt2img(steps=4, preview=True), progress=events.append)
    assert [event.step for event in events] == [1, 2, 3, 4]
    assert all(event.total_steps == 4 for event in events)
    assert events[0].preview is not None
    assert events[0].preview.size == (64, 64)  # decoded by the model's own (small) VAE


def test_cancel_stops_within_one_step(engine: LocalEngine) -> None:
    cancel = CancelToken()
    steps_seen: list[int] = []

    def on_progress(event: ProgressEvent) -> None:
        steps_seen.append(event.step)
        if event.step == 2:
            cancel.cancel()

    with pytest.raises(GenerationCanceledError):
        engine.run(txt2img(steps=20), progress=on_progress, cancel=cancel)
    assert steps_seen == [1, 2]
    # The model stays usable after a canceled run.
    assert engine.run(txt2img()).images[0].image.size == (64, 64)


def test_cancel_before_start_loads_nothing(settings: Settings) -> None:
    fresh = LocalEngine(settings)
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(GenerationCanceledError):
        fresh.run(txt2img(), cancel=cancel)
    assert fresh.loaded_models() == []


def test_task_switch_shares_weights(engine: LocalEngine) -> None:
    from limner.engines.local.schedulers import make_scheduler
    from limner.engines.local.tasks import task_pipeline

    base = engine.model_slot().pipeline
    for task in (Task.TXT2IMG, Task.IMG2IMG, Task.INPAINT):
        pipeline = task_pipeline(base, task, make_scheduler(base.scheduler, None), "tiny")
        assert pipeline.unet is base.unet
        assert pipeline.vae is base.vae
        assert pipeline.text_encoder is base.text_encoder
        unet_weight = next(pipeline.unet.parameters())
        assert unet_weight.data_ptr() == next(base.unet.parameters()).data_ptr()
        assert pipeline.scheduler is not base.scheduler


def test_img2img_keeps_structure_at_low_strength(engine: LocalEngine) -> None:
    init = Image.new("RGB", (64, 64), "white")
    init.paste((0, 0, 0), (0, 0, 32, 64))
    inputs = TaskInputs(init_image=init)
    low = engine.run(txt2img(task="img2img", init_image="init.png", strength=0.1, steps=10), inputs)
    high = engine.run(txt2img(task="img2img", init_image="init.png", strength=1.0, steps=10), inputs)
    source = pixels(init)
    low_error = np.abs(pixels(low.images[0].image) - source).mean()
    high_error = np.abs(pixels(high.images[0].image) - source).mean()
    assert low.images[0].record.pipeline == "StableDiffusionImg2ImgPipeline"
    assert low_error < high_error


def test_img2img_takes_size_from_the_input(engine: LocalEngine) -> None:
    init = Image.new("RGB", (100, 70), "gray")
    request = GenerationRequest(task=Task.IMG2IMG, prompt="x", steps=2, seed=1, init_image="i")
    result = engine.run(request, TaskInputs(init_image=init))
    assert result.images[0].image.size == (96, 64)


def test_inpaint_runs_on_a_plain_model(engine: LocalEngine) -> None:
    init = Image.new("RGB", (64, 64), "red")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    request = txt2img(task="inpaint", init_image="i", mask_image="m", strength=1.0)
    result = engine.run(request, TaskInputs(init_image=init, mask_image=mask))
    assert result.images[0].record.pipeline == "StableDiffusionInpaintPipeline"
    assert result.images[0].image.size == (64, 64)


def test_inpaint_model_with_nine_channels(engine: LocalEngine, tiny_models: dict[str, Path]) -> None:
    init = Image.new("RGB", (64, 64), "red")
    mask = Image.new("L", (64, 64), 255)
    request = txt2img(task="inpaint", init_image="i", mask_image="m", model=str(tiny_models["inpaint"]))
    assert engine.run(request, TaskInputs(init, mask)).images[0].image.size == (64, 64)
    with pytest.raises(UnsupportedTaskError, match="cannot do txt2img"):
        engine.run(txt2img(model=str(tiny_models["inpaint"])))


def test_edit_with_instruct_pix2pix_model(engine: LocalEngine, tiny_models: dict[str, Path]) -> None:
    photo = Image.new("RGB", (64, 64), "green")
    request = txt2img(
        task="edit", prompt="Cartoonize the following image", init_image="p", model=str(tiny_models["edit"])
    )
    strong = engine.run(request, TaskInputs(init_image=photo))
    weak = engine.run(request.model_copy(update={"image_guidance_scale": 1.0}), TaskInputs(init_image=photo))
    assert strong.images[0].record.pipeline == "StableDiffusionInstructPix2PixPipeline"
    assert strong.images[0].image.tobytes() != weak.images[0].image.tobytes()


def test_edit_on_a_text_to_image_model_is_refused(engine: LocalEngine) -> None:
    request = txt2img(task="edit", prompt="make it blue", init_image="p")
    with pytest.raises(UnsupportedTaskError, match="cartoonize"):
        engine.run(request, TaskInputs(init_image=Image.new("RGB", (64, 64))))


def test_lora_changes_output_and_unloading_restores_it(engine: LocalEngine, tiny_models: dict[str, Path]) -> None:
    baseline = engine.run(txt2img()).images[0].image.tobytes()
    lora = LoraSpec(ref=str(tiny_models["lora"]), weight=1.0)
    with_lora = engine.run(txt2img(loras=[lora])).images[0].image.tobytes()
    half = engine.run(txt2img(loras=[lora.model_copy(update={"weight": 0.3})])).images[0].image.tobytes()
    assert with_lora != baseline
    assert half not in (with_lora, baseline)
    assert engine.run(txt2img()).images[0].image.tobytes() == baseline  # disabled
    engine.run(txt2img(loras=[lora]))
    engine.unload_loras()
    assert engine.model_slot().loaded_adapters == frozenset()
    assert engine.run(txt2img()).images[0].image.tobytes() == baseline  # unloaded


def test_invalid_requests_fail_before_loading(settings: Settings, tmp_path: Path) -> None:
    fresh = LocalEngine(settings)
    pickle = tmp_path / "model.ckpt"
    pickle.write_bytes(b"\x80\x04not really")
    cases = [
        (txt2img(model=str(pickle)), UnsafeModelFormatError),
        (txt2img(model=str(tmp_path / "missing.safetensors")), ModelNotFoundError),
        (txt2img(model="not a model ref"), ModelNotFoundError),
        (txt2img(loras=[LoraSpec(ref=str(tmp_path / "x.pt"))]), UnsafeModelFormatError),
        (txt2img(width=4096, height=4096), InvalidRequestError),
        (txt2img(steps=500), InvalidRequestError),
    ]
    for request, error in cases:
        with pytest.raises(error):
            fresh.run(request)
    with pytest.raises(InvalidRequestError, match="input image"):
        fresh.run(GenerationRequest(task=Task.IMG2IMG, prompt="x", init_image="ref"), TaskInputs())
    assert fresh.loaded_models() == []


def test_model_cache_is_bounded_and_shares_loads(settings: Settings, tiny_models: dict[str, Path]) -> None:
    small = LocalEngine(settings.model_copy(update={"max_loaded_models": 1}))
    small.run(txt2img())
    assert len(small.loaded_models()) == 1
    edit = txt2img(task="edit", init_image="p", model=str(tiny_models["edit"]))
    small.run(edit, TaskInputs(init_image=Image.new("RGB", (64, 64))))
    assert small.loaded_models() == [tiny_models["edit"].name]


def test_half_precision_model_stays_half_after_runs(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """Each run's task pipeline shares the loaded modules without casting them (``from_pipe`` casts to
    float32 unless told the dtype, which turned a CUDA model's bf16/fp16 weights into float32 for good)."""
    settings = Settings(default_model=str(tiny_models["txt2img"]), output_dir=tmp_path, device="cpu",
                        dtype="bfloat16", _env_file=None)  # type: ignore[call-arg]  # fmt: skip
    engine = LocalEngine(settings)
    engine.run(txt2img())
    photo = Image.new("RGB", (64, 64), "teal")
    engine.run(txt2img(task="img2img", init_image="photo.png", strength=0.5, width=None, height=None),
               TaskInputs(init_image=photo))  # fmt: skip
    pipeline = engine.model_slot().pipeline
    assert {pipeline.unet.dtype, pipeline.vae.dtype, pipeline.text_encoder.dtype} == {torch.bfloat16}
