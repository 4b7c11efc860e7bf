"""Textual-inversion embeddings on the tiny model: resolved safely, their word acts, and never leaks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from limner.core.errors import InvalidRequestError, UnsafeModelFormatError
from limner.core.requests import GenerationRequest
from limner.engines.base import TaskInputs
from limner.engines.local.engine import LocalEngine
from limner.engines.local.textual_inversion import resolve_embedding

PROMPT = "a photo of tinyemb"


def txt2img(**fields: object) -> GenerationRequest:
    base: dict[str, object] = {"prompt": PROMPT, "steps": 2, "seed": 5, "width": 32, "height": 32}
    base.update(fields)
    return GenerationRequest.model_validate(base)


@pytest.fixture(scope="module")
def embedding_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An A1111-style embedding (one ``emb_params`` tensor, two vectors) for the tiny text encoder."""
    path = tmp_path_factory.mktemp("embeddings") / "tinyemb.safetensors"
    save_file({"emb_params": torch.randn(2, 32, generator=torch.Generator().manual_seed(0)) * 3}, str(path))
    return path


def pixels(engine: LocalEngine, request: GenerationRequest) -> np.ndarray:
    return np.asarray(engine.run(request).images[0].image, dtype=np.int16)


def test_the_word_of_an_embedding_acts_and_leaves_with_it(engine: LocalEngine, embedding_file: Path) -> None:
    slot = engine.model_slot()
    vocabulary = len(slot.pipeline.tokenizer)
    table = slot.pipeline.text_encoder.get_input_embeddings().weight.detach().clone()
    without = pixels(engine, txt2img())
    with_embedding = pixels(engine, txt2img(embeddings=[str(embedding_file)]))
    assert not np.array_equal(with_embedding, without)
    assert np.array_equal(pixels(engine, txt2img(embeddings=[str(embedding_file)])), with_embedding)
    # The next request without it sees the model as before: no word, no vectors, same pixels.
    assert np.array_equal(pixels(engine, txt2img()), without)
    assert slot.loaded_embeddings == frozenset()
    assert len(slot.pipeline.tokenizer) == vocabulary
    assert torch.equal(slot.pipeline.text_encoder.get_input_embeddings().weight, table)


def test_a_diffusers_embedding_adds_its_own_token(engine: LocalEngine, tmp_path: Path) -> None:
    path = tmp_path / "learned_embeds.safetensors"
    save_file({"<tiny-token>": torch.randn(32, generator=torch.Generator().manual_seed(1)) * 3}, str(path))
    plain = pixels(engine, txt2img(prompt="a photo of <tiny-token>"))
    loaded = pixels(engine, txt2img(prompt="a photo of <tiny-token>", embeddings=[str(tmp_path)]))
    assert not np.array_equal(plain, loaded)


def test_pickles_and_strangers_are_refused_before_loading(engine: LocalEngine, tmp_path: Path) -> None:
    with pytest.raises(UnsafeModelFormatError, match="pickles"):
        resolve_embedding(str(tmp_path / "easynegative.pt"))
    fake = tmp_path / "fake.safetensors"
    fake.write_bytes(b"\x80\x04" + b"\x00" * 64)
    with pytest.raises(UnsafeModelFormatError):
        engine.validate(txt2img(embeddings=[str(fake)]), TaskInputs())
    with pytest.raises(InvalidRequestError, match="neither"):
        resolve_embedding(str(tmp_path / "missing.safetensors"))
    wrong = tmp_path / "wide.safetensors"
    save_file({"emb_params": torch.zeros(1, 768)}, str(wrong))
    with pytest.raises(InvalidRequestError, match="does not fit"):
        engine.run(txt2img(embeddings=[str(wrong)]))
    assert engine.model_slot().loaded_embeddings == frozenset()


def test_an_sdxl_embedding_loads_into_both_text_encoders(sdxl_engine: LocalEngine, tmp_path: Path) -> None:
    path = tmp_path / "glow.safetensors"
    vectors = torch.Generator().manual_seed(2)
    save_file({"clip_l": torch.randn(2, 32, generator=vectors), "clip_g": torch.randn(2, 32, generator=vectors)},
              str(path))  # fmt: skip
    request = txt2img(prompt="a glow lamp", steps=1)
    plain = sdxl_engine.run(request).images[0].image
    glowing = sdxl_engine.run(request.model_copy(update={"embeddings": [str(path)]})).images[0].image
    assert glowing.tobytes() != plain.tobytes()
    assert sdxl_engine.run(request).images[0].image.tobytes() == plain.tobytes()
    single = tmp_path / "one.safetensors"
    save_file({"emb_params": torch.zeros(1, 32)}, str(single))
    with pytest.raises(InvalidRequestError, match="needs an SDXL embedding"):
        sdxl_engine.run(request.model_copy(update={"embeddings": [str(single)]}))
