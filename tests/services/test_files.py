"""The file store: local folders (atomic rename) and S3-compatible stores (one PUT per file), by key only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from limner.services.files import FileStore


def test_local_files_round_trip_and_keys_are_checked(tmp_path: Path) -> None:
    store = FileStore(str(tmp_path / "files"))
    store.put("images/abc.png", b"png")
    assert store.get("images/abc.png") == b"png"
    assert not list((tmp_path / "files" / "images").glob("*.partial"))
    for bad in ("../etc/passwd", "images/../x.png", "/abs.png", "images/a.exe"):
        with pytest.raises(ValueError, match="invalid file key"):
            store.put(bad, b"x")
    store.delete("images/abc.png")
    assert not store.exists("images/abc.png")


@pytest.fixture
def s3_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A bucket on moto's S3 server on loopback (nothing leaves the machine)."""
    pytest.importorskip("s3fs", reason="S3 stores need the s3 extra (s3fs)")
    server_module = pytest.importorskip("moto.server", reason="moto[server] is a dev dependency")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_ENDPOINT_URL": f"http://{host}:{port}"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    import boto3

    boto3.client("s3", endpoint_url=f"http://{host}:{port}").create_bucket(Bucket="limner")
    try:
        yield "s3://limner/files"
    finally:
        server.stop()


def test_an_s3_store_writes_each_file_with_one_put(s3_url: str) -> None:
    store = FileStore(s3_url)
    calls: list[str] = []
    fs = store._fs
    for name in ("mv", "open", "makedirs", "pipe_file"):
        original = getattr(fs, name)

        def spy(*args: object, _name: str = name, _original: object = original, **kwargs: object) -> object:
            calls.append(_name)
            return _original(*args, **kwargs)  # type: ignore[operator]

        setattr(fs, name, spy)
    store.put("images/abc.png", b"png bytes")
    assert calls == ["pipe_file"]  # no temporary object, no copy and delete
    fresh = FileStore(s3_url)  # another process reads it back
    assert fresh.get("images/abc.png") == b"png bytes"
    assert fresh.exists("images/abc.png")
    fresh.delete("images/abc.png")
    assert not FileStore(s3_url).exists("images/abc.png")
