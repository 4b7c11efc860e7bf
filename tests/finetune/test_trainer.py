"""DreamBooth on tiny models: LoRA export and registration, exact resume, folder-of-classes tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw
from safetensors.torch import load_file

from limner.core.errors import GenerationCanceledError
from limner.core.progress import CancelToken, ProgressEvent
from limner.engines.local.device import Placement
from limner.finetune.config import DreamBoothConfig
from limner.finetune.dataset import SubjectImages
from limner.finetune.trainer import class_words, instance_prompts, run_dreambooth

CPU = Placement(torch.device("cpu"), torch.float32)


def subject(count: int = 3) -> SubjectImages:
    images = []
    for index in range(count):
        image = Image.new("RGB", (64, 64), "white")
        ImageDraw.Draw(image).ellipse((8 + index, 8, 56 - index, 56), fill=(220, 30, 30))
        images.append(image)
    return SubjectImages(images, [""] * count)


def config(**overrides: object) -> DreamBoothConfig:
    values: dict[str, object] = {"instance_prompt": "a sks emoji", "steps": 8, "rank": 4, "checkpoint_every": 4,
                                 "learning_rate": 1e-3, "seed": 3}  # fmt: skip
    values.update(overrides)
    return DreamBoothConfig.model_validate(values)


def test_lora_is_exported_and_resume_is_exact(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    base = str(tiny_models["txt2img"])
    straight = run_dreambooth(base, subject(), config(), tmp_path / "a", tmp_path / "a-out", CPU)
    assert straight.kind == "lora"
    expected = load_file(str(straight.weights))
    assert expected
    assert all("lora" in key for key in expected)

    cancel = CancelToken()

    def stop_after_four(event: ProgressEvent) -> None:
        if event.step == 4:
            cancel.cancel()

    with pytest.raises(GenerationCanceledError):
        run_dreambooth(base, subject(), config(), tmp_path / "b", tmp_path / "b-out", CPU,
                       progress=stop_after_four, cancel=cancel)  # fmt: skip
    resumed = run_dreambooth(base, subject(), config(), tmp_path / "b", tmp_path / "b-out", CPU)
    got = load_file(str(resumed.weights))
    assert got.keys() == expected.keys()
    for key in expected:
        assert torch.equal(got[key], expected[key]), key


def test_prior_preservation_and_validation_images(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    seen: list[int] = []
    result = run_dreambooth(
        str(tiny_models["txt2img"]), subject(2),
        config(steps=4, class_prompt="an emoji", prior_preservation=True, num_class_images=2, validation_every=2),
        tmp_path / "w", tmp_path / "o", CPU, on_validation=lambda step, _path: seen.append(step),
    )  # fmt: skip
    assert seen == [2, 4]
    assert all(path.is_file() for path in result.validation_images)
    assert len(list((tmp_path / "w" / "class-images").rglob("*.png"))) == 2


def test_full_finetune_exports_a_model_folder(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    result = run_dreambooth(str(tiny_models["txt2img"]), subject(2), config(steps=2, full_finetune=True),
                            tmp_path / "w", tmp_path / "o", CPU)  # fmt: skip
    assert result.kind == "finetuned"
    assert (result.weights / "model_index.json").is_file()


def test_folder_of_classes_tokens() -> None:
    pictures = subject(3)
    classes = SubjectImages(pictures.images, ["n02085620-Chihuahua", "shiba_inu", "shiba_inu"])
    prompts, tokens = instance_prompts(config(classes_mode=True, instance_prompt="a photo of {token} {class}"), classes)
    assert tokens == {"n02085620-Chihuahua": "lmn0", "shiba_inu": "lmn1"}
    assert prompts == ["a photo of lmn0 Chihuahua", "a photo of lmn1 shiba inu", "a photo of lmn1 shiba inu"]
    assert class_words("n02099601-golden_retriever") == "golden retriever"


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="class prompt"):
        config(prior_preservation=True)
    with pytest.raises(ValueError, match="token"):
        config(classes_mode=True)
