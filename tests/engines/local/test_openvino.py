"""The OpenVINO backend: the UNet converted once (kept on disk), same pictures as PyTorch within float tolerance."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from limner.config import Settings
from limner.core.errors import InvalidRequestError
from limner.core.requests import GenerationRequest, LoraSpec
from limner.engines.base import TaskInputs
from limner.engines.local import engine as engine_module
from limner.engines.local import openvino_convert, openvino_unet
from limner.engines.local.engine import LocalEngine
from limner.engines.local.openvino_convert import plain_state
from limner.engines.local.openvino_unet import OpenVinoUNets, openvino_available

pytestmark = pytest.mark.skipif(not openvino_available(), reason="the openvino package (limner[openvino]) is absent")


def settings_for(model: Path, cache: Path, backend: str) -> Settings:
    return Settings(default_model=str(model), device="cpu", backend=backend, openvino_cache_dir=cache,
                    _env_file=None)  # type: ignore[call-arg, arg-type]  # fmt: skip


def pixels(engine: LocalEngine, inputs: TaskInputs | None = None, **fields: object) -> tuple[np.ndarray, str]:
    request = GenerationRequest.model_validate({"prompt": "a red fox", "steps": 3, "seed": 5, "width": 64,
                                                "height": 64, **fields})  # fmt: skip
    image = engine.run(request, inputs).images[0]
    return np.asarray(image.image, dtype=np.float64), image.record.pipeline


def test_openvino_draws_what_pytorch_draws_and_says_so(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    torch_pixels, torch_pipeline = pixels(LocalEngine(settings_for(tiny_models["txt2img"], tmp_path, "torch")))
    engine = LocalEngine(settings_for(tiny_models["txt2img"], tmp_path, "openvino"))
    assert engine.backend == "openvino"
    ov_pixels, ov_pipeline = pixels(engine)
    assert ov_pipeline == f"{torch_pipeline} (OpenVINO unet, vae, text_encoder)"
    assert np.abs(ov_pixels - torch_pixels).mean() <= 1.0  # mean difference within 1/255
    start = TaskInputs(init_image=Image.new("RGB", (64, 64), "orange"))
    _, img2img_pipeline = pixels(engine, start, task="img2img", init_image="in.png")  # another task, same UNet
    assert "OpenVINO" in img2img_pipeline


def test_auto_precision_asks_bf16_of_the_vae_decoder_only(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default (``auto``): the decoder, one pass into pixels, in bf16; the UNet, whose rounding every later
    step reads, and the text encoder in f32. The pixels stay within 1/255 (the test above, on the default)."""
    import openvino

    parts: list[str] = []
    precisions: list[str] = []
    read_model, compile_model = openvino.Core.read_model, openvino.Core.compile_model

    def reading(core: Any, path: str, *rest: Any) -> Any:
        parts.append(Path(path).stem)
        return read_model(core, path, *rest)

    def compiling(core: Any, model: Any, device: str, config: dict[str, Any]) -> Any:
        precisions.append(config["INFERENCE_PRECISION_HINT"])
        return compile_model(core, model, device, config)

    monkeypatch.setattr(openvino.Core, "read_model", reading)
    monkeypatch.setattr(openvino.Core, "compile_model", compiling)
    pixels(LocalEngine(settings_for(tiny_models["txt2img"], tmp_path, "openvino")))
    assert dict(zip(parts, precisions, strict=True)) == {"text-encoder": "f32", "unet": "f32", "vae-decoder": "bf16"}
    assert openvino_unet.precision_of("vae-decoder", "auto") == "bf16"
    assert openvino_unet.precision_of("unet", "auto") == "f32"
    assert openvino_unet.precision_of("vae-decoder", "f32") == "f32"


def test_bf16_precision_is_what_the_setting_asks(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """``openvino_precision=bf16`` compiles every module for bf16 (faster, pictures no longer equal)."""
    import openvino

    if "BF16" not in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        pytest.skip("this CPU has no bf16 units: OpenVINO computes in f32 whatever is asked")
    exact = LocalEngine(settings_for(tiny_models["txt2img"], tmp_path, "openvino"))
    fast_settings = settings_for(tiny_models["txt2img"], tmp_path, "openvino").model_copy(
        update={"openvino_precision": "bf16"}
    )
    fast = LocalEngine(fast_settings)
    exact_pixels, _ = pixels(exact)
    fast_pixels, _ = pixels(fast)
    assert not np.array_equal(exact_pixels, fast_pixels)
    assert np.abs(exact_pixels - fast_pixels).mean() < 20  # the same picture, rounded differently


def test_a_conversion_is_kept_on_disk_and_reused(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pixels(LocalEngine(settings_for(tiny_models["txt2img"], tmp_path, "openvino")))
    assert len(list(tmp_path.glob("*/*/unet.xml"))) == 1  # one model, one size
    assert len(list(tmp_path.glob("*/*/vae-decoder.xml"))) == 1
    assert len(list(tmp_path.glob("*/*/text-encoder.xml"))) == 1

    def no_conversion(*_: object) -> None:
        raise AssertionError("converted again")

    engine = LocalEngine(settings_for(tiny_models["txt2img"], tmp_path, "openvino"))
    pixels(engine, width=32, height=32)  # another size: its own conversion
    assert len(list(tmp_path.glob("*/*/unet.xml"))) == 2
    monkeypatch.setattr(OpenVinoUNets, "_convert", no_conversion)
    _, pipeline = pixels(LocalEngine(settings_for(tiny_models["txt2img"], tmp_path, "openvino")))
    assert "OpenVINO" in pipeline


def test_a_lora_runs_on_openvino_patched_into_the_graph_and_leaves_the_model_as_it_was(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    lora = [LoraSpec(ref=str(tiny_models["lora"]), weight=1.0)]
    on_torch = LocalEngine(settings_for(tiny_models["txt2img"], tmp_path, "torch"))
    torch_plain, _ = pixels(on_torch)
    torch_lora, _ = pixels(on_torch, loras=lora)
    engine = LocalEngine(settings_for(tiny_models["txt2img"], tmp_path, "openvino"))
    unet = engine.model_slot().pipeline.unet
    before = {key: tensor.clone() for key, tensor in plain_state(unet).items()}
    ov_lora, label = pixels(engine, loras=lora)
    assert label.endswith("(OpenVINO unet, vae, text_encoder)")
    assert np.abs(torch_lora - torch_plain).mean() > 2.0  # the LoRA shows ...
    assert np.abs(ov_lora - torch_lora).mean() <= 1.0  # ... and OpenVINO draws it as PyTorch does
    assert len(list(tmp_path.glob("*-lora-*/*/unet.xml"))) == 1  # its own conversion, keyed by the LoRA set
    ov_plain, _ = pixels(engine)  # the next run without the LoRA: the plain conversion, nothing left fused
    assert np.abs(ov_plain - torch_plain).mean() <= 1.0
    after = plain_state(unet)
    assert all(torch.equal(tensor, after[key]) for key, tensor in before.items())  # the shared UNet untouched


def test_another_lora_weight_runs_on_the_same_conversion(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_torch = LocalEngine(settings_for(tiny_models["txt2img"], tmp_path, "torch"))
    engine = LocalEngine(settings_for(tiny_models["txt2img"], tmp_path, "openvino"))
    pixels(engine, loras=[LoraSpec(ref=str(tiny_models["lora"]), weight=1.0)])
    assert len(list(tmp_path.glob("*-lora-*/*/unet.xml"))) == 1

    def no_conversion(*_: object) -> None:
        raise AssertionError("converted again for another weight")

    monkeypatch.setattr(OpenVinoUNets, "_convert", no_conversion)
    for weight in (0.4, -0.5):  # the weight is the graph's input: each drawn as PyTorch draws it
        lora = [LoraSpec(ref=str(tiny_models["lora"]), weight=weight)]
        torch_lora, _ = pixels(on_torch, loras=lora)
        ov_lora, label = pixels(engine, loras=lora)
        assert "OpenVINO unet" in label
        assert np.abs(ov_lora - torch_lora).mean() <= 1.0
    full, _ = pixels(on_torch, loras=[LoraSpec(ref=str(tiny_models["lora"]), weight=1.0)])
    assert np.abs(full - torch_lora).mean() > 1.0  # the weights differ enough to show
    unet = engine.model_slot().pipeline.unet
    compiled = engine._openvino._compiled[unet]  # type: ignore[union-attr]
    assert len({variant for variant, _ in compiled if variant}) == 1  # one compiled graph for every weight


def test_an_ip_adapter_keeps_the_unet_on_pytorch(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    engine = LocalEngine(settings_for(tiny_models["txt2img"], tmp_path, "openvino"))
    picture = Image.new("RGB", (48, 48), "red")
    _, label = pixels(engine, TaskInputs(reference_images=(picture,)), task="character", reference_images=["r.png"],
                      ip_adapter=str(tiny_models["ip_adapter"]))  # fmt: skip
    assert label.endswith("(OpenVINO vae, text_encoder)")  # the adapter replaces the UNet's attention processors


def test_asking_for_openvino_without_it_says_how_to_install(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "openvino_available", lambda: False)
    with pytest.raises(InvalidRequestError, match=r"limner\[openvino\]"):
        LocalEngine(settings_for(tiny_models["txt2img"], tmp_path, "openvino"))
    assert LocalEngine(settings_for(tiny_models["txt2img"], tmp_path, "auto")).backend == "torch"


def test_a_large_module_converts_in_a_child_process(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(str(tiny_models["txt2img"] / "unet")).eval()
    monkeypatch.setattr(openvino_convert, "CHILD_PROCESS_MIN_BYTES", 0)  # every module counts as large
    caplog.set_level(logging.INFO, logger=openvino_convert.__name__)
    stand_in = OpenVinoUNets(tmp_path, threads=1).for_unet(unet, "tiny")
    sample, hidden = torch.randn(2, 4, 8, 8), torch.randn(2, 77, unet.config.cross_attention_dim)
    with torch.inference_mode():
        got = stand_in(sample, 10, hidden).sample
        expected = unet(sample, 10, hidden).sample
    assert torch.allclose(got, expected, atol=1e-4)
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("converting the UNet of tiny for OpenVINO (once; cached in") for m in messages)
    assert any("peak memory of the child process" in m for m in messages)
    assert not list(tmp_path.glob("*/*/.convert-*"))  # the weights handed to the child are gone


def test_an_adapter_that_cannot_be_added_in_keeps_the_unet_on_pytorch(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(module: object) -> list[tuple[str, object, str]]:
        if getattr(module, "peft_config", None):
            raise openvino_convert.UnsupportedAdapterError("adapter x is not a plain LoRA (DoRA, biases)")
        return []

    monkeypatch.setattr(openvino_unet, "active_loras", unsupported)
    engine = LocalEngine(settings_for(tiny_models["txt2img"], tmp_path, "openvino"))
    _, label = pixels(engine, loras=[LoraSpec(ref=str(tiny_models["lora"]))])
    assert label.endswith("(OpenVINO vae, text_encoder)")  # a DoRA-like adapter: PyTorch's UNet, not wrong pixels


def tiny_sdxl_unet(time_ids: int = 6) -> Any:
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=8, down_block_types=("DownBlock2D",
        "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=time_ids * 8 + 32, cross_attention_dim=64, norm_num_groups=8,
    ).eval()  # fmt: skip


@pytest.mark.parametrize("time_ids", [6, 5], ids=["sdxl-base", "sdxl-refiner"])
def test_an_sdxl_unet_takes_its_pooled_embedding_and_time_ids_as_graph_inputs(tmp_path: Path, time_ids: int) -> None:
    """SDXL's ``added_cond_kwargs`` go into the converted graph (base: 6 time ids, refiner: 5 with the
    aesthetic score); the stand-in answers as the PyTorch UNet does."""
    unet = tiny_sdxl_unet(time_ids)
    assert openvino_unet.supports(unet)
    stand_in = OpenVinoUNets(tmp_path, threads=1).for_unet(unet, "tiny-xl")
    added = {"text_embeds": torch.randn(2, 32), "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64][:time_ids]] * 2)}
    sample, hidden = torch.randn(2, 4, 8, 8), torch.randn(2, 77, 64)
    with torch.inference_mode():
        got = stand_in(sample, 10, hidden, added_cond_kwargs=added).sample
        expected = unet(sample, 10, hidden, added_cond_kwargs=added).sample
    assert torch.allclose(got, expected, atol=1e-4)
    assert stand_in.add_embedding is unet.add_embedding  # what SDXL's pipelines read the widths from
    with pytest.raises(ValueError, match=r"takes no image_embeds$"):
        stand_in(sample, 10, hidden, added_cond_kwargs={**added, "image_embeds": torch.zeros(1)})


def test_a_lora_of_convolutions_and_projections_on_an_sdxl_unet_runs_at_any_weight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Linear and convolution patches, beside SDXL's extra inputs; new weights (peft's ``scaling``,
    per layer) are read at the call, on the one conversion."""
    from peft import LoraConfig, inject_adapter_in_model

    unet = tiny_sdxl_unet()
    torch.manual_seed(4)
    config = LoraConfig(r=4, lora_alpha=8, init_lora_weights=False, target_modules=["to_q", "to_v", "conv1", "proj_in"])
    unet = inject_adapter_in_model(config, unet, adapter_name="style")
    unet.peft_config = {"style": config}
    patched = [layer for layer in unet.modules() if "style" in getattr(layer, "scaling", {})]
    assert any(isinstance(layer.base_layer, torch.nn.Conv2d) for layer in patched)
    stand_in = OpenVinoUNets(tmp_path, threads=1).for_unet(unet, "tiny-xl")
    added = {"text_embeds": torch.randn(2, 32), "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64]] * 2)}
    sample, hidden = torch.randn(2, 4, 8, 8), torch.randn(2, 77, 64)
    outputs = []
    for weights in ((2.0,), (0.0,), (0.5, -1.5)):
        for index, layer in enumerate(patched):
            layer.scaling["style"] = weights[index % len(weights)]
        with torch.inference_mode():
            got = stand_in(sample, 10, hidden, added_cond_kwargs=added).sample
            expected = unet(sample, 10, hidden, added_cond_kwargs=added).sample
        assert torch.allclose(got, expected, atol=1e-4)
        outputs.append(got)
        monkeypatch.setattr(OpenVinoUNets, "_convert", lambda *_: pytest.fail("converted again for a new weight"))
    assert not torch.allclose(outputs[0], outputs[1], atol=1e-3)  # the weights change the answer
    assert len(list(tmp_path.glob("*-lora-*/*/unet.xml"))) == 1
