"""A CLIP BPE tokenizer trimmed to the words a dataset uses, with byte-level fallback.

Why: the real CLIP BPE vocab (49,408 tokens, shipped as ``bpe_simple_vocab_16e6.txt.gz`` inside
the ``open_clip_torch`` wheel) would need a 49k-row embedding, too big for a model shipped in the
repo. Keeping only the merges the captions actually use, plus all 512 byte symbols, tokenizes every
training caption exactly as full CLIP does, and still tokenizes any other text (down to bytes).
The result is a normal ``CLIPTokenizer`` folder, so the standard pipelines load it.
"""

from __future__ import annotations

import gzip
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from transformers import CLIPTokenizer

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
CLIP_MERGE_COUNT = 49152 - 256 - 2
BPE_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
DEFAULT_BPE_PATH = Path(".cache/open_clip/bpe_simple_vocab_16e6.txt.gz")


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's (and GPT-2's) reversible byte -> printable unicode map, in CLIP's vocab order."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, [chr(c) for c in codes], strict=True))


def fetch_clip_bpe(path: Path = DEFAULT_BPE_PATH) -> Path:
    """Return the CLIP merges file, extracting it from the ``open_clip_torch`` wheel if needed.

    The wheel is downloaded with ``pip download --no-deps`` and only read as a zip: open_clip is
    never installed or imported.
    """
    path = Path(path)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", tmp, "open_clip_torch"]
        subprocess.run(cmd, check=True, capture_output=True)
        wheel = next(Path(tmp).glob("open_clip_torch-*.whl"))
        with zipfile.ZipFile(wheel) as archive, archive.open(BPE_MEMBER) as src, path.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    return path


def read_clip_merges(path: Path) -> list[tuple[str, str]]:
    with gzip.open(path) as handle:
        lines = handle.read().decode("utf-8").split("\n")[1 : CLIP_MERGE_COUNT + 1]
    return [(a, b) for a, b in (line.split() for line in lines if line.strip())]


def _bpe(word: str, ranks: dict[tuple[str, str], int]) -> tuple[list[str], list[tuple[str, str]]]:
    """CLIP's BPE on one byte-mapped word: final symbols and the merges it applied."""
    symbols = [*word[:-1], word[-1] + "</w>"]
    used: list[tuple[str, str]] = []
    while len(symbols) > 1:
        pairs = list(itertools.pairwise(symbols))
        best = min(pairs, key=lambda pair: ranks.get(pair, len(ranks)))
        if best not in ranks:
            break
        used.append(best)
        merged: list[str] = []
        i = 0
        while i < len(symbols):
            if i < len(symbols) - 1 and (symbols[i], symbols[i + 1]) == best:
                merged.append(best[0] + best[1])
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return symbols, used


def _byte_level_tokenizer(model_max_length: int) -> CLIPTokenizer:
    alphabet = list(bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate([*alphabet, *(a + "</w>" for a in alphabet), BOS_TOKEN, EOS_TOKEN])}
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=model_max_length)


def trimmed_clip_tokenizer(
    texts: Iterable[str], bpe_path: Path, save_dir: Path, model_max_length: int = 77
) -> CLIPTokenizer:
    """Build, save and reload a CLIP tokenizer holding only the merges ``texts`` need."""
    merges = read_clip_merges(bpe_path)
    ranks = {pair: rank for rank, pair in enumerate(merges)}
    probe = _byte_level_tokenizer(model_max_length).backend_tokenizer
    assert probe.normalizer is not None
    assert probe.pre_tokenizer is not None
    used: set[tuple[str, str]] = set()
    expected: dict[str, list[str]] = {}
    for text in texts:
        normalized = probe.normalizer.normalize_str(text)
        for word, _ in probe.pre_tokenizer.pre_tokenize_str(normalized):
            if word in expected:
                continue
            expected[word], applied = _bpe(word, ranks)
            used.update(applied)
    kept = sorted(used, key=ranks.__getitem__)
    alphabet = list(bytes_to_unicode().values())
    symbols = [*alphabet, *(a + "</w>" for a in alphabet), *(a + b for a, b in kept), BOS_TOKEN, EOS_TOKEN]
    vocab = {s: i for i, s in enumerate(dict.fromkeys(symbols))}
    save_dir = Path(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    (save_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges_text = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in kept)
    (save_dir / "merges.txt").write_text(merges_text, encoding="utf-8")
    tokenizer = CLIPTokenizer(
        vocab=vocab,
        merges=list(kept),  # type: ignore[arg-type]  # the BPE backend wants (a, b) pairs, not strings
        model_max_length=model_max_length,
    )
    for word, pieces in list(expected.items())[:2000]:
        got = tokenizer.backend_tokenizer.model.tokenize(word)
        if [t.value for t in got] != pieces:
            raise AssertionError(f"trimmed BPE differs from CLIP on {word!r}: {got} != {pieces}")
    tokenizer.save_pretrained(str(save_dir))
    return CLIPTokenizer.from_pretrained(str(save_dir))
