"""A finished run is copied into the registry's folder and registered: a LoRA as its file, a fine-tune as its folder."""

from __future__ import annotations

from pathlib import Path

from limner.db.base import make_engine, make_session_factory
from limner.db.migrate import upgrade_to_head
from limner.finetune.config import DreamBoothConfig
from limner.finetune.trainer import FinetuneResult
from limner.services.finetune_registration import register_result
from limner.services.models import ModelRegistry


def test_lora_and_finetune_runs_are_registered(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'reg.db'}")
    upgrade_to_head(engine)
    sessions = make_session_factory(engine)
    registry = ModelRegistry(tmp_path / "models")
    cfg = DreamBoothConfig(instance_prompt="a photo of sks dog")

    lora_dir = tmp_path / "run-lora"
    lora_dir.mkdir()
    (lora_dir / "pytorch_lora_weights.safetensors").write_bytes(b"x" * 10)
    lora = FinetuneResult(lora_dir / "pytorch_lora_weights.safetensors", "lora", 5, "sd15", tokens={"dog": "sks"})
    full_dir = tmp_path / "run-full"
    (full_dir / "unet").mkdir(parents=True)
    (full_dir / "model_index.json").write_text("{}")
    (full_dir / "unet" / "weights.safetensors").write_bytes(b"y" * 7)
    full = FinetuneResult(full_dir, "finetuned", 3, "sd15")

    with sessions() as session:
        dogs = register_result(registry, session, "dogs", "limner-tiny", lora, cfg)
        assert (dogs.kind, dogs.base_model) == ("lora", "limner-tiny")
        assert dogs.reference == str(tmp_path / "models" / "dogs" / "pytorch_lora_weights.safetensors")
        assert Path(dogs.reference).read_bytes() == b"x" * 10
        assert dogs.size_bytes == 10
        assert dogs.details["instance_prompt"] == "a photo of sks dog"
        assert dogs.details["tokens"] == {"dog": "sks"}

        tuned = register_result(registry, session, "tuned", "limner-tiny", full, cfg)
        assert tuned.kind == "finetuned"
        assert tuned.reference == str(tmp_path / "models" / "tuned")
        assert (Path(tuned.reference) / "unet" / "weights.safetensors").is_file()
        assert tuned.size_bytes == 9
        assert [model.name for model in registry.list_models(session)] == ["dogs", "tuned"]
    engine.dispose()
