"""IP-Adapter conditioning on the tiny model with a tiny adapter built from scratch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from limner.core.errors import InvalidRequestError, UnsafeModelFormatError
from limner.core.requests import GenerationRequest
from limner.engines.base import TaskInputs
from limner.engines.local.engine import LocalEngine
from limner.engines.local.ip_adapter import adapter_name, resolve_adapter


def reference(color: str) -> Image.Image:
    image = Image.new("RGB", (48, 48), color)
    image.paste((20, 20, 20), (12, 12, 36, 36))
    return image


def character(adapter: Path, **fields: object) -> GenerationRequest:
    values: dict[str, object] = {
        "task": "character",
        "prompt": "reading a book on the beach",
        "steps": 3,
        "seed": 5,
        "width": 64,
        "height": 64,
        "reference_images": ["ref.png"],
        "ip_adapter": str(adapter),
    }
    values.update(fields)
    return GenerationRequest.model_validate(values)


def pixels(result: object) -> bytes:
    return result.images[0].image.tobytes()  # type: ignore[attr-defined]


def test_reference_changes_the_output(engine: LocalEngine, tiny_models: dict[str, Path]) -> None:
    adapter = tiny_models["ip_adapter"]
    red = engine.run(character(adapter, ip_adapter_scale=1.0), TaskInputs(reference_images=(reference("red"),)))
    blue = engine.run(character(adapter, ip_adapter_scale=1.0), TaskInputs(reference_images=(reference("blue"),)))
    plain = engine.run(GenerationRequest(prompt="reading a book on the beach", steps=3, seed=5, width=64, height=64))
    assert pixels(red) != pixels(blue)
    assert pixels(red) != pixels(plain)
    assert red.images[0].record.ip_adapter == str(adapter.resolve())
    assert red.images[0].record.request.task.value == "character"


def test_scale_zero_equals_no_adapter(engine: LocalEngine, tiny_models: dict[str, Path]) -> None:
    zero = engine.run(character(tiny_models["ip_adapter"], ip_adapter_scale=0.0),
                      TaskInputs(reference_images=(reference("red"),)))  # fmt: skip
    plain = engine.run(GenerationRequest(prompt="reading a book on the beach", steps=3, seed=5, width=64, height=64))
    assert pixels(zero) == pixels(plain)


def test_precomputed_embedding_reproduces_the_pictures(engine: LocalEngine, tiny_models: dict[str, Path]) -> None:
    adapter = tiny_models["ip_adapter"]
    pictures = (reference("red"), reference("green"))
    request = character(adapter, reference_images=["a.png", "b.png"], reference_weights=[3.0, 1.0])
    direct = engine.run(request, TaskInputs(reference_images=pictures))
    key, embedding = engine.encode_references(list(pictures), [3.0, 1.0], ip_adapter=str(adapter))
    saved = engine.run(request, TaskInputs(reference_embeddings={key: embedding}))
    assert pixels(direct) == pixels(saved)
    assert embedding.positive.shape[:2] == (1, 1)


def test_weights_move_the_average(engine: LocalEngine, tiny_models: dict[str, Path]) -> None:
    adapter = str(tiny_models["ip_adapter"])
    pictures = [reference("red"), reference("blue")]
    _, red_only = engine.encode_references(pictures[:1], None, ip_adapter=adapter)
    _, mostly_red = engine.encode_references(pictures, [9.0, 1.0], ip_adapter=adapter)
    _, even = engine.encode_references(pictures, None, ip_adapter=adapter)
    assert torch.dist(mostly_red.positive, red_only.positive) < torch.dist(even.positive, red_only.positive)


def test_missing_references_and_unknown_default(engine: LocalEngine, tiny_models: dict[str, Path]) -> None:
    with pytest.raises(InvalidRequestError, match="reference pictures"):
        engine.run(character(tiny_models["ip_adapter"]), TaskInputs())
    request = character(tiny_models["ip_adapter"]).model_copy(update={"ip_adapter": None})
    with pytest.raises(InvalidRequestError, match="no default IP-Adapter"):
        engine.run(request, TaskInputs(reference_images=(reference("red"),)))


def test_adapter_references(tmp_path: Path) -> None:
    with pytest.raises(UnsafeModelFormatError):
        resolve_adapter(str(tmp_path / "adapter.bin"))
    hub = resolve_adapter("h94/IP-Adapter/models/ip-adapter_sd15.safetensors")
    assert (hub.location, hub.subfolder, hub.weight_name) == ("h94/IP-Adapter", "models", "ip-adapter_sd15.safetensors")
    with pytest.raises(InvalidRequestError):
        resolve_adapter("not-an-adapter")


def test_model_without_adapter_after_character_run(engine: LocalEngine, tiny_models: dict[str, Path]) -> None:
    engine.run(character(tiny_models["ip_adapter"]), TaskInputs(reference_images=(reference("red"),)))
    first = engine.run(GenerationRequest(prompt="a fox", steps=2, seed=1, width=64, height=64))
    assert engine.model_slot().pipeline.unet.encoder_hid_proj is None
    second = engine.run(GenerationRequest(prompt="a fox", steps=2, seed=1, width=64, height=64))
    assert pixels(first) == pixels(second)


def test_embedding_cache_key_changes_when_the_adapter_file_is_replaced(tmp_path: Path) -> None:
    """A saved character's embedding, cached for one adapter file, is not reused once the file is replaced."""
    from safetensors.torch import save_file

    path = tmp_path / "ip-adapter.safetensors"
    save_file({"image_proj.proj.weight": torch.zeros(4, 2)}, str(path))
    before = resolve_adapter(str(path))
    save_file({"image_proj.latents": torch.zeros(1, 16, 8)}, str(path))
    after = resolve_adapter(str(path))
    assert before.key == after.key == str(path.resolve())
    assert before.embedding_key != after.embedding_key
    assert resolve_adapter(str(path)).embedding_key == after.embedding_key
    assert adapter_name(after.embedding_key) == after.key  # what users see in a character's cached adapters
