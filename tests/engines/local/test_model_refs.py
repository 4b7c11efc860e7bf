"""Model and LoRA references resolve to sources; unsafe or unknown ones are refused up front."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from limner.core.errors import ModelNotFoundError, UnsafeModelFormatError
from limner.engines.local.model_refs import SourceKind, resolve_lora, resolve_model
from limner.engines.local.safetensors_check import check_safetensors_file


def real_safetensors(path: Path) -> Path:
    save_file({"w": torch.zeros(2, 2)}, str(path))
    return path


def test_folder_and_hub_and_single_file(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    folder = resolve_model(str(tiny_models["txt2img"]))
    assert folder.kind is SourceKind.FOLDER
    assert resolve_model("stabilityai/sd-turbo").kind is SourceKind.HUB
    single = resolve_model(str(real_safetensors(tmp_path / "model.safetensors")))
    assert single.kind is SourceKind.SINGLE_FILE
    assert single.name == "model"


@pytest.mark.parametrize("suffix", [".ckpt", ".bin", ".pt", ".pth", ".pkl"])
def test_pickle_formats_are_refused(tmp_path: Path, suffix: str) -> None:
    with pytest.raises(UnsafeModelFormatError, match="pickle"):
        resolve_model(str(tmp_path / f"model{suffix}"))
    with pytest.raises(UnsafeModelFormatError, match="pickle"):
        resolve_lora(str(tmp_path / f"lora{suffix}"))


@pytest.mark.parametrize("ref", ["../../etc/passwd", "not a ref", "a/b/c", "/nonexistent/folder/x"])
def test_unknown_references(ref: str) -> None:
    with pytest.raises(ModelNotFoundError):
        resolve_model(ref)


def test_folder_without_model_index(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"model_index\.json"):
        resolve_model(str(tmp_path))


def test_lora_references(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    lora_file = resolve_lora(str(tiny_models["lora"]))
    assert lora_file.weight_name == tiny_models["lora"].name
    folder = resolve_lora(str(tiny_models["lora"].parent))
    assert folder.weight_name == tiny_models["lora"].name
    hub = resolve_lora("owner/style-lora/weights/style.safetensors")
    assert (hub.kind, hub.location, hub.weight_name) == (
        SourceKind.HUB,
        "owner/style-lora",
        "weights/style.safetensors",
    )
    with pytest.raises(UnsafeModelFormatError):
        resolve_lora("owner/repo/model.bin")
    with pytest.raises(ModelNotFoundError, match="exactly one"):
        resolve_lora(str(tmp_path))


def test_pickle_renamed_safetensors_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "evil.safetensors"
    fake.write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    with pytest.raises(UnsafeModelFormatError, match="pickle"):
        resolve_model(str(fake))
    zipped = tmp_path / "torch.safetensors"
    zipped.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    with pytest.raises(UnsafeModelFormatError, match="pickle"):
        resolve_lora(str(zipped))


def test_absurd_header_length_is_refused_without_reading(tmp_path: Path) -> None:
    bogus = tmp_path / "big.safetensors"
    bogus.write_bytes(struct.pack("<Q", 2**62) + b"{}")
    with pytest.raises(UnsafeModelFormatError, match="header length"):
        check_safetensors_file(bogus)


def test_tensor_outside_the_file_is_refused(tmp_path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}).encode()
    bad = tmp_path / "short.safetensors"
    bad.write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 16)
    with pytest.raises(UnsafeModelFormatError, match="outside the file"):
        check_safetensors_file(bad)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(struct.pack("<Q", 4) + b"\xff\xfe{]")
    with pytest.raises(UnsafeModelFormatError, match="unreadable header"):
        check_safetensors_file(garbage)


def test_real_safetensors_header_is_returned(tmp_path: Path) -> None:
    header = check_safetensors_file(real_safetensors(tmp_path / "ok.safetensors"))
    assert "w" in header


def test_builtin_model_missing_weights_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import limner.engines.local.model_refs as refs

    monkeypatch.setattr(refs, "builtin_model_path", lambda name: tmp_path / name)
    with pytest.raises(ModelNotFoundError, match="not present in this installation"):
        refs.resolve_model("limner-tiny")
