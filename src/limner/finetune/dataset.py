"""Subject pictures for fine-tuning: from a folder or a zip, validated like every upload.

Why so careful: a training dataset is an upload. Zip entries with ``..``, absolute paths or
symlinks are refused, the total unpacked size is capped (zip bombs), nothing is written outside
the dataset folder, and every picture goes through the same checks as any input image.
"""

from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image

from limner.core.errors import InvalidRequestError
from limner.imaging.inputs import open_image_bytes

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp"})
MAX_ZIP_ENTRIES = 20_000


@dataclass(frozen=True)
class SubjectImages:
    """Pictures and, in folder-of-classes mode, the class of each one ("" in single-subject mode)."""

    images: list[Image.Image]
    classes: list[str]

    @property
    def class_names(self) -> list[str]:
        return sorted({name for name in self.classes if name})


def unsafe_zip_entry(entry: zipfile.ZipInfo) -> str | None:
    """``"outside"`` for an entry that would land outside the folder it is unpacked into (absolute,
    a drive, ``..``), ``"link"`` for a symbolic link, None for an entry safe to unpack."""
    name = entry.filename
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
        return "outside"
    if stat.S_ISLNK(entry.external_attr >> 16):
        return "link"
    return None


def extract_zip(archive: Path, destination: Path, max_total_bytes: int) -> Path:
    """Unpack ``archive`` into ``destination``, refusing any entry that could escape it."""
    destination.mkdir(parents=True, exist_ok=True)
    root = destination.resolve()
    try:
        zipped = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidRequestError(f"{archive.name} is not a valid zip file", param="dataset") from exc
    with zipped:
        entries = zipped.infolist()
        if len(entries) > MAX_ZIP_ENTRIES:
            raise InvalidRequestError(f"the zip has {len(entries)} entries; at most {MAX_ZIP_ENTRIES}", param="dataset")
        if sum(entry.file_size for entry in entries) > max_total_bytes:
            raise InvalidRequestError(f"the zip unpacks to more than {max_total_bytes} bytes", param="dataset")
        for entry in entries:
            name = entry.filename
            parts = PurePosixPath(name.replace("\\", "/")).parts
            unsafe = unsafe_zip_entry(entry)
            if unsafe == "outside":
                raise InvalidRequestError(f"zip entry {name!r} points outside the dataset folder", param="dataset")
            if unsafe == "link":
                raise InvalidRequestError(f"zip entry {name!r} is a symbolic link; links are refused", param="dataset")
            if entry.is_dir() or Path(name).suffix.lower() not in IMAGE_SUFFIXES or "__MACOSX" in parts:
                continue
            target = (root / Path(*parts)).resolve()
            if not target.is_relative_to(root):
                raise InvalidRequestError(f"zip entry {name!r} points outside the dataset folder", param="dataset")
            target.parent.mkdir(parents=True, exist_ok=True)
            with zipped.open(entry) as source, target.open("wb") as sink:
                remaining = entry.file_size + 1
                while chunk := source.read(min(1 << 20, remaining)):
                    remaining -= len(chunk)
                    if remaining <= 0:
                        raise InvalidRequestError(f"zip entry {name!r} is larger than it claims", param="dataset")
                    sink.write(chunk)
    return destination


def load_subject(
    folder: Path,
    *,
    classes: bool,
    max_per_class: int,
    max_bytes: int,
    max_pixels: int,
) -> SubjectImages:
    """Pictures directly in ``folder`` (subject mode) or one sub-folder per class (classes mode)."""
    if not folder.is_dir():
        raise InvalidRequestError(f"{folder} is not a folder of pictures", param="instance_images")
    groups: list[tuple[str, list[Path]]]
    if classes:
        groups = [
            (sub.name, _pictures(sub)) for sub in sorted(folder.iterdir()) if sub.is_dir() and not sub.is_symlink()
        ]
    else:
        groups = [("", _pictures(folder))]
    images: list[Image.Image] = []
    labels: list[str] = []
    for label, paths in groups:
        for path in paths[:max_per_class]:
            data = path.read_bytes()
            images.append(open_image_bytes(data, param=f"instance_images/{path.name}", max_bytes=max_bytes,
                                           max_pixels=max_pixels))  # fmt: skip
            labels.append(label)
    if not images:
        where = "in its sub-folders" if classes else "in it"
        raise InvalidRequestError(f"{folder} has no PNG, JPEG or WebP pictures {where}", param="instance_images")
    return SubjectImages(images, labels)


def _pictures(folder: Path) -> list[Path]:
    return sorted(
        path for path in folder.iterdir()
        if path.is_file() and not path.is_symlink() and path.suffix.lower() in IMAGE_SUFFIXES
    )  # fmt: skip


def square(image: Image.Image, side: int) -> Image.Image:
    """Center-crop to a square and resize: the training resolution."""
    width, height = image.size
    edge = min(width, height)
    left, top = (width - edge) // 2, (height - edge) // 2
    return image.crop((left, top, left + edge, top + edge)).resize((side, side), Image.Resampling.BICUBIC)
