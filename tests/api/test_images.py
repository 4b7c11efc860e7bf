"""The gallery over HTTP, and untrusted uploads."""

from __future__ import annotations

import io
import struct
import time
import zlib

from PIL import Image

from tests.api.conftest import Api, png_bytes


def make_job(api: Api, user: str, prompt: str) -> list[str]:
    body = {"prompt": prompt, "steps": 2, "width": 64, "height": 64, "seed": 11}
    job = api.client.post("/v1/jobs", json=body, headers=api.as_user(user)).json()
    return list(api.wait(job["id"], user)["result_image_ids"])


def noise_png(side: int) -> bytes:
    """A PNG that does not compress: over the 1 MB upload cap of the test server at 700 px."""
    import os

    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, format="PNG")
    return buffer.getvalue()


def huge_png_header(width: int = 50_000, height: int = 50_000) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + chunk(b"IEND", b"")
    )


def test_gallery_lists_filters_and_searches(api: Api) -> None:
    make_job(api, "carol", "a lighthouse at dusk")
    make_job(api, "carol", "a teapot on a table")
    headers = api.as_user("carol")
    found = api.client.get("/v1/images", params={"q": "LIGHTHOUSE dusk"}, headers=headers).json()
    assert [item["prompt"] for item in found["items"]] == ["a lighthouse at dusk"]
    assert api.client.get("/v1/images", params={"q": "100%_"}, headers=headers).json()["total"] == 0
    by_task = api.client.get("/v1/images", params={"task": "txt2img", "limit": 1}, headers=headers).json()
    assert by_task["total"] >= 2
    assert len(by_task["items"]) == 1
    newest = api.client.get("/v1/images", headers=headers).json()["items"][0]
    assert newest["prompt"] == "a teapot on a table"
    future = api.client.get("/v1/images", params={"since": "2999-01-01T00:00:00Z"}, headers=headers).json()
    assert future["total"] == 0


def test_image_file_thumbnail_metadata_and_delete(api: Api) -> None:
    (image_id,) = make_job(api, "carol", "a red kite")
    headers = api.as_user("carol")
    thumbnail = api.client.get(f"/v1/images/{image_id}/thumbnail", headers=headers)
    assert thumbnail.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(thumbnail.content)).size == (64, 64)
    metadata = api.client.get(f"/v1/images/{image_id}/metadata", headers=headers).json()
    assert metadata["parameters"]["request"]["prompt"] == "a red kite"
    assert metadata["parameters"]["seed"] == 11
    png = api.client.get(f"/v1/images/{image_id}", headers=headers).content
    assert Image.open(io.BytesIO(png)).text["parameters"].startswith("a red kite")  # type: ignore[attr-defined]
    assert api.client.delete(f"/v1/images/{image_id}", headers=api.as_user("bob")).status_code == 404
    assert api.client.delete(f"/v1/images/{image_id}", headers=headers).status_code == 204
    assert api.client.get(f"/v1/images/{image_id}", headers=headers).status_code == 404


def test_other_users_images_are_404(api: Api) -> None:
    (image_id,) = make_job(api, "bob", "a secret plan")
    for suffix in ("", "/thumbnail", "/metadata"):
        response = api.client.get(f"/v1/images/{image_id}{suffix}", headers=api.as_user("carol"))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    carol_sees = api.client.get("/v1/images", params={"q": "secret"}, headers=api.as_user("carol")).json()
    assert carol_sees["total"] == 0
    assert api.client.get(f"/v1/images/{image_id}", headers=api.as_user("alice")).status_code == 200


def test_path_traversal_ids_are_404(api: Api) -> None:
    headers = api.as_user("bob")
    for image_id in ("..%2F..%2Fetc%2Fpasswd", "../../etc/passwd", "%2e%2e", "images%2Fx.png"):
        response = api.client.get(f"/v1/images/{image_id}", headers=headers)
        assert response.status_code == 404, image_id


def test_upload_is_stored_without_metadata(api: Api) -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("secret", "gps and camera serial")
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "blue").save(buffer, format="PNG", pnginfo=info)
    upload = api.client.post("/v1/uploads", files={"file": ("x.png", buffer.getvalue())}, headers=api.as_user("bob"))
    assert upload.status_code == 201
    assert (upload.json()["width"], upload.json()["height"]) == (40, 30)
    stored = api.client.get(f"/v1/images/{upload.json()['id']}", headers=api.as_user("bob")).content
    assert b"gps and camera serial" not in stored


def test_bad_uploads_are_refused_quickly(api: Api) -> None:
    headers = api.as_user("bob")
    tiff = io.BytesIO()
    Image.new("RGB", (8, 8)).save(tiff, format="TIFF")
    cases = [
        (tiff.getvalue(), 415),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", 415),
        (b"<html><body>hello</body></html>", 415),
        (b"", 400),
        (png_bytes()[:50], 400),
        (noise_png(700), 413),
    ]
    for data, expected in cases:
        response = api.client.post("/v1/uploads", files={"file": ("photo.png", data, "image/png")}, headers=headers)
        assert response.status_code == expected, (expected, response.text)
        assert set(response.json()["error"]) == {"type", "code", "message", "param"}
    started = time.perf_counter()
    bomb = api.client.post("/v1/uploads", files={"file": ("bomb.png", huge_png_header())}, headers=headers)
    assert bomb.status_code == 413
    assert "pixels" in bomb.json()["error"]["message"]
    assert time.perf_counter() - started < 2.0


def test_oversized_body_is_413_before_reading(api: Api) -> None:
    headers = {**api.as_user("bob"), "Content-Type": "application/json"}
    response = api.client.post("/v1/jobs", content=b"x" * (3 * 1024 * 1024), headers=headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    upload = api.client.post("/v1/uploads", files={"file": ("big.png", b"\x00" * (3 * 1024 * 1024))}, headers=headers)
    assert upload.status_code == 413


def test_chunked_oversized_body_is_cut_off(api: Api) -> None:
    def chunks():  # no Content-Length: the middleware counts as it streams
        for _ in range(40):
            yield b"y" * 100_000

    headers = {**api.as_user("bob"), "Content-Type": "application/json"}
    response = api.client.post("/v1/jobs", content=chunks(), headers=headers)
    assert response.status_code == 413


def test_openapi_describes_the_api(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    for path in ("/v1/jobs", "/v1/jobs/{job_id}", "/v1/images", "/v1/images/generations", "/v1/uploads",
                 "/v1/auth/token", "/healthz", "/readyz", "/metrics"):  # fmt: skip
        assert path in schema["paths"], path
    content = schema["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]
    assert list(content) == ["application/json"]  # documented by FastAPI itself: pictures go to /v1/uploads
    reference = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "prompt" in schema["components"]["schemas"][reference]["properties"]
    assert "LoraSpec" in schema["components"]["schemas"]


def test_errors_use_one_envelope(api: Api) -> None:
    for response in (
        api.client.get("/v1/nowhere"),
        api.client.get("/v1/jobs", params={"limit": 0}, headers=api.as_user("bob")),
        api.client.delete("/healthz"),
    ):
        error = response.json()["error"]
        assert set(error) == {"type", "code", "message", "param"}
        assert "Traceback" not in response.text


def test_health_ready_and_metrics(api: Api) -> None:
    assert api.client.get("/healthz").json()["status"] == "ok"
    ready = api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "worker": "ok"}
    metrics = api.client.get("/metrics").text
    assert "limner_queue_depth" in metrics
    assert 'limner_jobs{status="succeeded"}' in metrics
    assert "limner_job_duration_seconds_count" in metrics


def test_server_info(api: Api) -> None:
    assert api.client.get("/v1/server").status_code == 401
    info = api.client.get("/v1/server", headers=api.as_user("bob")).json()
    assert (info["device"], info["dtype"]) == ("cpu", "float32")
    assert isinstance(info["loaded_models"], list)
    assert info["queue_depth"] == 0  # every job of this module was waited for: nothing is left queued
