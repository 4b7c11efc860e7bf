"""Where image files live: any fsspec filesystem (a local folder by default; ``s3://`` with limner[s3]).

Why keys and not paths: callers pass generated keys (``images/<id>.png``); a key is checked to be
a plain relative name, so no user input ever becomes a path.
"""

from __future__ import annotations

import re

import fsspec
from fsspec.core import url_to_fs

_KEY = re.compile(r"^[a-z]+/[A-Za-z0-9_-]+\.(png|webp|safetensors|zip)$")


class FileStore:
    """Put, get and delete blobs by key under one root URL."""

    def __init__(self, root_url: str) -> None:
        try:
            self._fs, root = url_to_fs(root_url)
        except ImportError as exc:  # e.g. s3:// without s3fs
            raise ImportError(f"{root_url.split(':', 1)[0]}:// file stores need an extra: pip install 'limner[s3]' "
                              f"({exc})") from exc  # fmt: skip
        self._root = root.rstrip("/")
        self._local = isinstance(self._fs, fsspec.implementations.local.LocalFileSystem)
        if self._local:
            self._fs.makedirs(self._root, exist_ok=True)

    def _path(self, key: str) -> str:
        if not _KEY.match(key):
            raise ValueError(f"invalid file key {key!r}")
        return f"{self._root}/{key}"

    def put(self, key: str, data: bytes) -> None:
        """Write so that readers never see half a file: one PUT on an object store (atomic there), a
        temporary file and a rename on a local disk."""
        path = self._path(key)
        if not self._local:
            self._fs.pipe_file(path, data)
            return
        parent = path.rsplit("/", 1)[0]
        self._fs.makedirs(parent, exist_ok=True)
        temporary = f"{path}.partial"
        with self._fs.open(temporary, "wb") as handle:
            handle.write(data)
        self._fs.mv(temporary, path)

    def get(self, key: str) -> bytes:
        data: bytes = self._fs.cat_file(self._path(key))
        return data

    def exists(self, key: str) -> bool:
        return bool(self._fs.exists(self._path(key)))

    def delete(self, key: str) -> None:
        path = self._path(key)
        if self._fs.exists(path):
            self._fs.rm_file(path)
