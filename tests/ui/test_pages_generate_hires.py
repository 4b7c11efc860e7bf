"""The Generate page's hires-fix panel: its job fields, and a hires job from the studio."""

from __future__ import annotations

import io

import httpx
from PIL import Image

from limner.ui import navigation
from limner.ui.components.hires_panel import hires_fields
from tests.api.live_server import LiveServer
from tests.ui.conftest import AppFactory, assert_clean, messages


def test_the_panel_asks_for_nothing_until_switched_on() -> None:
    assert hires_fields(False, 2.0, 0.5, "latent", None) == {}
    assert hires_fields(True, 1.5, 0.3, " ", 10) == {"hires_scale": 1.5, "hires_strength": 0.3,
                                                     "hires_upscaler": "latent", "hires_steps": 10}  # fmt: skip


def test_generate_with_the_hires_fix(studio: AppFactory, server: LiveServer, token: str) -> None:
    at = studio(navigation.GENERATE)
    at.text_area(key="gen.prompt").input("a big red fox")
    at.number_input(key="gen.steps").set_value(2)
    at.checkbox(key="gen.hires.on").check()
    at.text_input(key="gen.hires.upscaler").input("lanczos")
    at.run()
    assert_clean(at)
    at.button(key="gen.submit").click().run()
    assert_clean(at)
    tracked = at.session_state["gen.job"]
    assert tracked.status == "succeeded", messages(at)
    headers = {"Authorization": f"Bearer {token}"}
    job = httpx.get(f"{server.url}/v1/jobs/{tracked.id}", headers=headers).json()
    assert (job["request"]["hires_scale"], job["request"]["hires_upscaler"]) == (2.0, "lanczos")
    data = httpx.get(f"{server.url}/v1/images/{job['result_image_ids'][0]}", headers=headers).content
    assert Image.open(io.BytesIO(data)).size == (128, 128)  # the tiny model draws 64x64, then twice that
