"""The real CLIP tokenizer, built offline from the merges shipped in the package.

Why build it: a single-file checkpoint carries no tokenizer, and diffusers would fetch
``vocab.json``/``merges.txt`` from the hub. CLIP's vocabulary is fully determined by its BPE merges
(256 byte symbols, the same with ``</w>``, one token per merge, then the two special tokens), so the
~200 KB merges file (MIT, OpenAI) is enough to rebuild the 49,408-token tokenizer every SD family
uses. OpenCLIP (SD 2.x, SDXL's second encoder) differs only in settings such as the pad token,
which come from the family's ``tokenizer_config.json``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from transformers import CLIPTokenizer

from limner.training.tokenizer import BOS_TOKEN, EOS_TOKEN, bytes_to_unicode, read_clip_merges

CLIP_VOCAB_SIZE = 49408


def shipped_bpe_path() -> Path:
    """The packaged CLIP merges file (trimmed to the merges CLIP uses)."""
    resource = resources.files("limner.data").joinpath("single_file", "clip", "bpe_simple_vocab_16e6.txt.gz")
    return Path(str(resource))


def clip_vocab_and_merges(bpe_path: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP's ``vocab.json`` mapping and merge list, in OpenAI's token order."""
    merges = read_clip_merges(bpe_path)
    alphabet = list(bytes_to_unicode().values())
    symbols = [*alphabet, *(a + "</w>" for a in alphabet), *(a + b for a, b in merges), BOS_TOKEN, EOS_TOKEN]
    vocab = {symbol: index for index, symbol in enumerate(symbols)}
    if len(vocab) != CLIP_VOCAB_SIZE:
        raise ValueError(f"{bpe_path} gives {len(vocab)} CLIP tokens, expected {CLIP_VOCAB_SIZE}")
    return vocab, merges


def clip_tokenizer(settings_dir: Path | None = None, bpe_path: Path | None = None) -> CLIPTokenizer:
    """A ``CLIPTokenizer`` with the real vocabulary and the settings of ``settings_dir``.

    ``settings_dir`` is a diffusers ``tokenizer``/``tokenizer_2`` folder holding only
    ``tokenizer_config.json`` (pad token, maximum length); without it, OpenAI CLIP's defaults apply.
    """
    settings: dict[str, object] = {}
    if settings_dir is not None and (settings_dir / "tokenizer_config.json").is_file():
        settings = json.loads((settings_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    vocab, merges = clip_vocab_and_merges(bpe_path or shipped_bpe_path())
    pad = settings.get("pad_token", EOS_TOKEN)
    pad_token = str(pad["content"]) if isinstance(pad, dict) else str(pad)
    max_length = settings.get("model_max_length", 77)
    return CLIPTokenizer(
        vocab=vocab,
        merges=merges,  # type: ignore[arg-type]  # the BPE backend wants (a, b) pairs, not strings
        pad_token=pad_token,
        model_max_length=int(max_length) if isinstance(max_length, int | float | str) else 77,
    )
