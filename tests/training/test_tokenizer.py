"""The trimmed CLIP tokenizer: same tokens as full CLIP on its texts, byte fallback elsewhere."""

from __future__ import annotations

from pathlib import Path

from transformers import CLIPTokenizer

from limner.training.tokenizer import BOS_TOKEN, EOS_TOKEN, bytes_to_unicode, read_clip_merges, trimmed_clip_tokenizer


def _full_tokenizer(merges_file: Path) -> CLIPTokenizer:
    merges = read_clip_merges(merges_file)
    alphabet = list(bytes_to_unicode().values())
    symbols = [*alphabet, *(a + "</w>" for a in alphabet), *(a + b for a, b in merges), BOS_TOKEN, EOS_TOKEN]
    vocab = {s: i for i, s in enumerate(dict.fromkeys(symbols))}
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=16)


def test_trimmed_tokenizer_matches_full_clip_on_its_texts(tmp_path: Path, merges_file: Path) -> None:
    texts = ["a red square", "Blue SQUARE!"]
    trimmed = trimmed_clip_tokenizer(texts, merges_file, tmp_path / "tok", model_max_length=16)
    full = _full_tokenizer(merges_file)
    for text in texts:
        assert trimmed.tokenize(text) == full.tokenize(text)
    assert "blue</w>" in trimmed.get_vocab()
    assert len(trimmed) < len(full)


def test_unseen_words_fall_back_to_bytes(tmp_path: Path, merges_file: Path) -> None:
    trimmed = trimmed_clip_tokenizer(["red square"], merges_file, tmp_path / "tok", model_max_length=16)
    ids = trimmed("zebra ünïcode 🐶").input_ids
    assert trimmed.unk_token_id not in ids[1:-1]
    assert trimmed.decode(ids, skip_special_tokens=True).replace(" ", "") == "zebraünïcode🐶"
    assert (tmp_path / "tok" / "vocab.json").exists()
