"""Datasets are uploads: unsafe zips are refused and nothing lands outside the dataset folder."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from limner.core.errors import InvalidRequestError
from limner.finetune.dataset import extract_zip, load_subject

LIMITS = {"max_bytes": 1_000_000, "max_pixels": 4096 * 4096}


def png(color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buffer, format="PNG")
    return buffer.getvalue()


def make_zip(path: Path, entries: list[tuple[str, bytes]], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return path


@pytest.mark.parametrize(
    ("entries", "symlink", "fragment"),
    [
        ([("../escape.png", png())], None, "outside"),
        ([("/abs/escape.png", png())], None, "outside"),
        ([("a/../../escape.png", png())], None, "outside"),
        ([("ok.png", png())], "link.png", "symbolic link"),
    ],
)
def test_malicious_zips_are_refused(tmp_path: Path, entries: list[tuple[str, bytes]], symlink: str | None,
                                    fragment: str) -> None:  # fmt: skip
    archive = make_zip(tmp_path / "data.zip", entries, symlink)
    target = tmp_path / "dataset"
    with pytest.raises(InvalidRequestError, match=fragment):
        extract_zip(archive, target, max_total_bytes=10_000_000)
    assert not (tmp_path / "escape.png").exists()
    assert not list(tmp_path.parent.glob("escape.png"))


def test_zip_bomb_and_garbage(tmp_path: Path) -> None:
    bomb = make_zip(tmp_path / "bomb.zip", [("big.png", b"\x00" * 5_000_000)])
    with pytest.raises(InvalidRequestError, match="unpacks to more"):
        extract_zip(bomb, tmp_path / "out", max_total_bytes=1_000_000)
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(InvalidRequestError, match="not a valid zip"):
        extract_zip(garbage, tmp_path / "out2", max_total_bytes=1_000_000)


def test_classes_mode_with_cap(tmp_path: Path) -> None:
    entries = [(f"n02085620-Chihuahua/{i}.png", png("tan")) for i in range(4)]
    entries += [(f"shiba_inu/{i}.png", png("orange")) for i in range(2)]
    entries += [("notes.txt", b"ignored"), ("__MACOSX/x.png", png())]
    folder = extract_zip(make_zip(tmp_path / "d.zip", entries), tmp_path / "dataset", max_total_bytes=10_000_000)
    subject = load_subject(folder, classes=True, max_per_class=3, **LIMITS)
    assert subject.class_names == ["n02085620-Chihuahua", "shiba_inu"]
    assert subject.classes.count("n02085620-Chihuahua") == 3
    assert len(subject.images) == 5


def test_bad_pictures_in_a_dataset(tmp_path: Path) -> None:
    folder = tmp_path / "subject"
    folder.mkdir()
    (folder / "fake.png").write_text("<html>hi</html>", encoding="utf-8")
    with pytest.raises(InvalidRequestError, match="not a PNG, JPEG or WebP"):
        load_subject(folder, classes=False, max_per_class=10, **LIMITS)
    with pytest.raises(InvalidRequestError, match="not a folder"):
        load_subject(tmp_path / "missing", classes=False, max_per_class=10, **LIMITS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidRequestError, match="no PNG"):
        load_subject(tmp_path / "empty", classes=False, max_per_class=10, **LIMITS)
