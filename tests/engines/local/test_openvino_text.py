"""The CLIP text encoders on OpenVINO: same outputs and pixels as PyTorch, every prompt path, and PyTorch
when textual-inversion words change the token table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from limner.config import Settings
from limner.core.requests import GenerationRequest
from limner.engines.local.engine import LocalEngine
from limner.engines.local.openvino_unet import OpenVinoUNets, openvino_available
from limner.weights import LIMNER_TINY
from tests.engines.local.tiny_sdxl import build_tiny_sdxl

pytestmark = pytest.mark.skipif(not openvino_available(), reason="the openvino package (limner[openvino]) is absent")

LONG = ", ".join(["a red fox in a snowy forest at dawn with tall pine trees"] * 8)  # several windows of tokens


def engine_for(model: Path, cache: Path, backend: str) -> LocalEngine:
    return LocalEngine(Settings(default_model=str(model), device="cpu", backend=backend, openvino_cache_dir=cache,
                                _env_file=None))  # type: ignore[call-arg, arg-type]  # fmt: skip


def draw(engine: LocalEngine, **fields: object) -> tuple[np.ndarray, str]:
    request = GenerationRequest.model_validate({"prompt": "a red fox", "steps": 3, "seed": 5, "width": 64,
                                                "height": 64, **fields})  # fmt: skip
    image = engine.run(request).images[0]
    return np.asarray(image.image, dtype=np.float64), image.record.pipeline


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalEngine, LocalEngine]:
    """limner-tiny on PyTorch and on OpenVINO."""
    cache = tmp_path_factory.mktemp("openvino-cache")
    return engine_for(LIMNER_TINY, cache, "torch"), engine_for(LIMNER_TINY, cache, "openvino")


@pytest.mark.parametrize(
    "prompt",
    ["an emoji of a red apple", "an emoji of a (red:1.4) apple, [blurry]", LONG],
    ids=["plain", "a1111-weights", "long"],
)
def test_the_text_encoder_runs_on_openvino_with_pytorch_pixels(
    tiny_pair: tuple[LocalEngine, LocalEngine], prompt: str
) -> None:
    on_torch, on_openvino = tiny_pair
    torch_pixels, _ = draw(on_torch, prompt=prompt, negative_prompt="ugly")
    ov_pixels, label = draw(on_openvino, prompt=prompt, negative_prompt="ugly")
    assert label.endswith("(OpenVINO unet, vae, text_encoder)")
    assert np.abs(ov_pixels - torch_pixels).mean() <= 1.0  # mean difference within 1/255


def test_the_stand_in_answers_like_the_encoder(tmp_path: Path) -> None:
    from transformers import CLIPTextModel

    encoder = CLIPTextModel.from_pretrained(str(LIMNER_TINY / "text_encoder")).eval()
    stand_in = OpenVinoUNets(tmp_path, threads=1).for_text_encoder(encoder)
    ids = torch.randint(0, encoder.config.vocab_size, (3, 32))
    with torch.inference_mode():
        expected = encoder(ids, output_hidden_states=True)
        got = stand_in(ids, torch.ones_like(ids), output_hidden_states=True)
        plain = stand_in(ids, return_dict=False)
    assert torch.allclose(got.last_hidden_state, expected.last_hidden_state, atol=1e-4)
    assert torch.allclose(got.pooler_output, expected.pooler_output, atol=1e-4)
    assert len(got.hidden_states) == len(expected.hidden_states)
    assert torch.allclose(got.hidden_states[-2], expected.hidden_states[-2], atol=1e-4)
    assert len(plain) == 2  # no hidden states unless asked
    assert torch.equal(plain[0], got.last_hidden_state)
    assert stand_in.final_layer_norm is encoder.final_layer_norm  # clip_skip and compel read it
    assert (stand_in.dtype, stand_in.device.type, stand_in.config) == (torch.float32, "cpu", encoder.config)
    mask = torch.ones_like(ids)
    mask[:, 20:] = 0  # a real padding mask: the PyTorch encoder answers
    with torch.inference_mode():
        masked = stand_in(ids, mask)
        assert torch.equal(masked.last_hidden_state, encoder(ids, mask).last_hidden_state)


def test_textual_inversion_words_keep_the_text_encoder_on_pytorch(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    embedding = tmp_path / "tinyemb.safetensors"
    save_file({"emb_params": torch.randn(2, 32, generator=torch.Generator().manual_seed(0)) * 3}, str(embedding))
    fields = {"prompt": "a photo of tinyemb", "embeddings": [str(embedding)]}
    torch_pixels, _ = draw(engine_for(tiny_models["txt2img"], tmp_path, "torch"), **fields)
    engine = engine_for(tiny_models["txt2img"], tmp_path, "openvino")
    ov_pixels, label = draw(engine, **fields)
    assert label.endswith("(OpenVINO unet, vae)")
    assert np.abs(ov_pixels - torch_pixels).mean() <= 1.0
    _, label = draw(engine, prompt="a photo of tinyemb")  # the next run without the word: OpenVINO again
    assert label.endswith("(OpenVINO unet, vae, text_encoder)")


def test_sdxl_runs_its_unet_and_both_text_encoders_on_openvino(tmp_path: Path) -> None:
    folder = tmp_path / "tiny-sdxl"
    build_tiny_sdxl(folder)
    torch_pixels, _ = draw(engine_for(folder, tmp_path, "torch"), negative_prompt="ugly")
    engine = engine_for(folder, tmp_path, "openvino")
    ov_pixels, label = draw(engine, negative_prompt="ugly")
    assert label.endswith("(OpenVINO unet, vae, text_encoder, text_encoder_2)")
    assert np.abs(ov_pixels - torch_pixels).mean() <= 1.0
    weighted, _ = draw(engine, prompt="a (red:1.3) fox", negative_prompt="ugly")
    expected, _ = draw(engine_for(folder, tmp_path, "torch"), prompt="a (red:1.3) fox", negative_prompt="ugly")
    assert np.abs(weighted - expected).mean() <= 1.0


def test_a_lora_on_the_text_encoder_is_patched_into_its_converted_graph(tmp_path: Path) -> None:
    from peft import LoraConfig, inject_adapter_in_model
    from transformers import CLIPTextModel

    encoder = CLIPTextModel.from_pretrained(str(LIMNER_TINY / "text_encoder")).eval()
    models = OpenVinoUNets(tmp_path, threads=1)
    plain = models.for_text_encoder(encoder)
    ids = torch.randint(0, encoder.config.vocab_size, (2, 32))
    with torch.inference_mode():
        before = plain(ids).last_hidden_state  # converted before the LoRA comes
    torch.manual_seed(3)
    config = LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=["q_proj", "v_proj", "fc1"])
    encoder = inject_adapter_in_model(config, encoder, adapter_name="style")
    encoder.peft_config = {"style": config}  # what diffusers' loader sets on a patched text encoder
    with_lora = models.for_text_encoder(encoder)
    with torch.inference_mode():
        expected = encoder(ids).last_hidden_state
        got = with_lora(ids).last_hidden_state
        assert torch.allclose(got, expected, atol=1e-4)
        assert not torch.allclose(before, expected, atol=1e-2)  # the LoRA shows
        assert torch.equal(plain(ids).last_hidden_state, before)  # the plain conversion stays plain
    assert len(list(tmp_path.glob("*-lora-*/32/text-encoder.xml"))) == 1
    with pytest.raises(RuntimeError, match="LoRA set"), torch.inference_mode():
        plain(torch.randint(0, 100, (1, 16)))  # a new shape of a stand-in made before the LoRA: refused
    patched = [layer for layer in encoder.modules() if "style" in getattr(layer, "scaling", {})]
    for index, layer in enumerate(patched):  # a weight per layer, as diffusers' per-block weights write them
        layer.scaling["style"] = 0.3 if index % 2 else -0.7
    with torch.inference_mode():  # the same conversion, the scales read at the call
        assert torch.allclose(with_lora(ids).last_hidden_state, encoder(ids).last_hidden_state, atol=1e-4)
    assert len(list(tmp_path.glob("*-lora-*/32/text-encoder.xml"))) == 1


def test_a_lora_on_the_token_table_keeps_the_text_encoder_on_pytorch(tmp_path: Path) -> None:
    from peft import LoraConfig, inject_adapter_in_model
    from transformers import CLIPTextModel

    from limner.engines.local.openvino_convert import UnsupportedAdapterError

    encoder = CLIPTextModel.from_pretrained(str(LIMNER_TINY / "text_encoder")).eval()
    config = LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=["token_embedding"])
    encoder = inject_adapter_in_model(config, encoder, adapter_name="words")
    encoder.peft_config = {"words": config}
    with pytest.raises(UnsupportedAdapterError, match="words"):
        OpenVinoUNets(tmp_path, threads=1).for_text_encoder(encoder)
