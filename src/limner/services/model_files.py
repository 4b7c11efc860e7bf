"""Registered models' weights in the shared file store, so a model trained on one machine runs on any other.

Why: a training job may run on any worker, and the model it registers must then be usable by every
worker and API process, which share the database and the file store (``LIMNER_FILES_URL``, e.g.
``s3://``) but not their disks. After registration the managed folder is packed into one zip
(stored, not compressed: safetensors do not shrink) under a generated key; a machine that lacks the
folder unpacks that zip into its own registry folder the first time the name is used.

Only weight and config files travel (safetensors, json, txt, md): the unpacking refuses anything
else, links and entries that would leave the folder, like every other archive limner opens.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import threading
import zipfile
from pathlib import Path, PurePosixPath

from limner.finetune.dataset import unsafe_zip_entry
from limner.services.files import FileStore
from limner.services.generation import RegisteredName

FILES_KEY = "files_key"  # in RegisteredModel.details: where the packed folder lives in the file store
FILES_PATH = "files_path"  # in RegisteredModel.details: the reference, relative to the unpacked folder
ALLOWED_SUFFIXES = frozenset({".safetensors", ".json", ".txt", ".md"})
MAX_UNPACKED_BYTES = 64 * 2**30


class ModelFilesError(RuntimeError):
    """A packed model in the file store is missing or is not what limner wrote."""


class ModelFiles:
    """Pack a registered model's folder into the file store; unpack it on a machine that lacks it."""

    def __init__(self, files: FileStore, models_dir: Path) -> None:
        self._files = files
        self._models_dir = Path(models_dir)
        self._lock = threading.Lock()  # one unpacking at a time per process: worker threads may ask at once

    def publish(self, model_id: str, folder: Path, reference: Path) -> dict[str, str]:
        """Upload ``folder`` (one PUT) and return the details to record: its key and the reference inside it."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file() and path.suffix.lower() in ALLOWED_SUFFIXES:
                    archive.write(path, path.relative_to(folder).as_posix())
        key = f"models/{model_id}.zip"
        self._files.put(key, buffer.getvalue())
        inside = reference.relative_to(folder).as_posix() if reference != folder else ""
        return {FILES_KEY: key, FILES_PATH: inside}

    def local_reference(self, entry: RegisteredName) -> str:
        """The entry's reference when this machine has it; else its folder unpacked from the file store (once)."""
        if entry.files_key is None or Path(entry.reference).exists():
            return entry.reference
        target = self._models_dir / entry.name
        inside = entry.files_path or ""
        with self._lock:
            if not (target / inside).exists():
                self._unpack(entry.files_key, target)
        return str(target / inside) if inside else str(target)

    def delete(self, key: str) -> None:
        self._files.delete(key)

    def _unpack(self, key: str, target: Path) -> None:
        if not self._files.exists(key):
            raise ModelFilesError(f"the model's files ({key}) are not in the file store")
        self._models_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=self._models_dir))
        try:
            with zipfile.ZipFile(io.BytesIO(self._files.get(key))) as archive:
                _extract(archive, staging)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)  # readers see the whole folder or none of it
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _extract(archive: zipfile.ZipFile, root: Path) -> None:
    entries = archive.infolist()
    if sum(entry.file_size for entry in entries) > MAX_UNPACKED_BYTES:
        raise ModelFilesError("the packed model is larger than limner allows")
    for entry in entries:
        parts = PurePosixPath(entry.filename).parts
        if entry.is_dir():
            continue
        if unsafe_zip_entry(entry) is not None:
            raise ModelFilesError(f"the packed model has an entry outside its folder: {entry.filename!r}")
        if PurePosixPath(entry.filename).suffix.lower() not in ALLOWED_SUFFIXES:
            raise ModelFilesError(f"the packed model has a file limner does not load: {entry.filename!r}")
        destination = root.joinpath(*parts)
        destination.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(entry) as source, destination.open("wb") as sink:
            shutil.copyfileobj(source, sink)
