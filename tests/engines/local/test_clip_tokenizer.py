"""The CLIP tokenizer built from the shipped merges gives the real CLIP ids, with each family's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from limner.engines.local.clip_tokenizer import CLIP_VOCAB_SIZE, clip_tokenizer, shipped_bpe_path
from limner.engines.local.single_file_configs import shipped_config_root

# Ids from the hub's own tokenizer files (stabilityai/stable-diffusion-xl-base-1.0, tokenizer/vocab.json + merges.txt).
REAL_CLIP_IDS = {
    "a photo of a cat": [49406, 320, 1125, 539, 320, 2368, 49407],
    "An astronaut riding a horse on Mars, 4k photo!": [
        49406, 550, 18376, 6765, 320, 4558, 525, 7496, 267, 275, 330, 1125, 256, 49407,
    ],
    "naïve café — 東京 🐱": [49406, 1097, 35689, 563, 15304, 2005, 48338, 21078, 361, 22979, 49407],
}  # fmt: skip


@pytest.fixture(scope="module")
def sd15_tokenizer() -> object:
    return clip_tokenizer(shipped_config_root() / "sd15" / "tokenizer")


@pytest.mark.parametrize("prompt", sorted(REAL_CLIP_IDS))
def test_prompts_tokenize_to_the_real_clip_ids(sd15_tokenizer: object, prompt: str) -> None:
    assert sd15_tokenizer(prompt).input_ids == REAL_CLIP_IDS[prompt]  # type: ignore[operator]


def test_vocabulary_is_clip_size_and_the_shipped_merges_are_small(sd15_tokenizer: object) -> None:
    assert len(sd15_tokenizer) == CLIP_VOCAB_SIZE  # type: ignore[arg-type]
    assert shipped_bpe_path().stat().st_size < 300_000
    assert (shipped_bpe_path().parent / "LICENSE.md").read_text(encoding="utf-8").count("MIT License") >= 1


def test_openclip_settings_pad_with_exclamation_mark(sd15_tokenizer: object) -> None:
    """SDXL's second tokenizer (OpenCLIP) pads with "!" (id 0); OpenAI CLIP pads with end-of-text."""
    openclip = clip_tokenizer(shipped_config_root() / "sdxl-base" / "tokenizer_2")
    padded = openclip("a cat", padding="max_length", max_length=77).input_ids
    assert padded[:4] == [49406, 320, 2368, 49407]
    assert padded[4:] == [0] * 73
    assert sd15_tokenizer.pad_token_id == 49407  # type: ignore[attr-defined]


def test_missing_settings_fall_back_to_clip_defaults(tmp_path: Path) -> None:
    tokenizer = clip_tokenizer(tmp_path)
    assert (tokenizer.model_max_length, tokenizer.pad_token) == (77, "<|endoftext|>")
