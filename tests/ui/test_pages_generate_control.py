"""The Generate page's control panel: the preview of what the model sees, and a controlled job."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from limner.testing.tiny_control import build_tiny_controlnet
from limner.ui import navigation
from limner.ui.client import Upload
from limner.ui.components.control_panel import ControlChoice, control_preview
from tests.api.live_server import LiveServer
from tests.ui.conftest import AppFactory, assert_clean, messages


def square_png(size: int = 64) -> bytes:
    picture = Image.new("RGB", (size, size), "white")
    picture.paste((0, 0, 0), (size // 4, size // 4, 3 * size // 4, 3 * size // 4))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def test_preview_is_the_servers_edge_map() -> None:
    preview = control_preview(square_png(), "canny")
    assert preview is not None
    edges = np.asarray(Image.open(io.BytesIO(preview)).convert("L"))
    assert edges[16, 16:48].max() == 255
    assert edges[32, 24:40].max() == 0
    assert control_preview(square_png(), "depth") is None  # made by the server's depth model
    choice = ControlChoice(Upload("c.png", b""), "canny", 0.5, "a/b", 0.0, 0.8)
    assert choice.body("img1") == {"image_id": "img1", "type": "canny", "weight": 0.5, "model": "a/b",
                                   "start": 0.0, "end": 0.8}  # fmt: skip


@pytest.fixture(scope="module")
def controlnet(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_controlnet(tiny_models["txt2img"], tmp_path_factory.mktemp("ui-control") / "controlnet")


def test_generate_with_a_control_picture(studio: AppFactory, controlnet: Path, server: LiveServer, token: str) -> None:
    at = studio(navigation.GENERATE)
    at.text_area(key="gen.prompt").input("a controlled house")
    at.number_input(key="gen.steps").set_value(2)
    at.file_uploader(key="gen.control.file").upload("edges.png", square_png(), "image/png")
    at.run()
    at.text_input(key="gen.control.model").input(str(controlnet))  # the studio's user is an admin: paths allowed
    at.slider(key="gen.control.weight").set_value(0.7)
    at.run()
    assert_clean(at)
    assert any("What the model sees" in str(caption.value) for caption in at.caption)
    at.button(key="gen.submit").click().run()
    assert_clean(at)
    tracked = at.session_state["gen.job"]
    assert tracked.status == "succeeded", messages(at)
    job = httpx.get(f"{server.url}/v1/jobs/{tracked.id}", headers={"Authorization": f"Bearer {token}"}).json()
    assert [(c["type"], c["weight"], c["model"]) for c in job["request"]["controls"]] == [
        ("canny", 0.7, str(controlnet))
    ]
