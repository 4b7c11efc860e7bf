"""One live ``limner serve`` for the UI tests (tiny txt2img model), and AppTest sessions against it.

Why a real server process: the studio is a client of the REST API only, so its tests talk HTTP
to the same server a person would run; the package-scoped server is shared by every UI test
module to keep the suite fast on a small machine.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from limner.ui import app_path
from limner.ui.api_types import Capabilities, ModelCapabilities, Offer, User
from limner.ui.features import ServerFeatures
from limner.ui.navigation import PageSpec
from tests.api.live_server import LiveServer

ADMIN = "admin"
PASSWORD = "correct horse battery"
RUN_TIMEOUT = 90.0


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("ui-server"), tiny_models["txt2img"], LIMNER_JOBS_PER_MINUTE="1000")
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="package")
def token(server: LiveServer) -> str:
    return server.token()


@pytest.fixture(scope="package")
def admin(server: LiveServer, token: str) -> User:
    response = httpx.get(f"{server.url}/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    return User.model_validate(response.json())


AppFactory = Callable[..., AppTest]


@pytest.fixture
def studio(server: LiveServer, token: str, admin: User) -> AppFactory:
    """A signed-in AppTest session on a given page (or signed out with ``signed_in=False``)."""

    def make(
        page: PageSpec | None = None,
        *,
        signed_in: bool = True,
        features: ServerFeatures | None = None,
        capabilities: Capabilities | None = None,
    ) -> AppTest:
        at = AppTest.from_file(str(app_path()), default_timeout=RUN_TIMEOUT)
        at.session_state["api_url"] = server.url
        if signed_in:
            at.session_state["token"] = token
            at.session_state["user"] = admin
        if features is not None:
            at.session_state["features"] = features
        if capabilities is not None:
            at.session_state["capabilities"] = capabilities
        at.run()
        if page is not None:
            at.switch_page(page.path).run()
        return at

    return make


EVERYTHING = Capabilities(
    default_model="tiny",
    models=(ModelCapabilities(name="tiny", tasks=("txt2img", "img2img", "inpaint"), default=True),),
    tasks={"txt2img": True, "img2img": True, "inpaint": True, "edit": True, "character": True},
    providers=("replicate",),
    character_adapter=True,
    presets=(Offer(name="cartoonize", task="edit"),),
    styles=(Offer(name="watercolor"),),
)
"""A server that says it can do everything: pages draw every form (the server still decides at submit)."""


def png(color: str = "orange", size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def mask_png(size: tuple[int, int] = (64, 64)) -> bytes:
    """White square in the middle (repaint), black around it (keep)."""
    picture = Image.new("RGB", size, "black")
    picture.paste((255, 255, 255), (16, 16, 48, 48))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def assert_clean(at: AppTest) -> None:
    """No exception reached Streamlit and the last-resort guard did not fire."""
    assert not at.exception, [item.value for item in at.exception]
    unexpected = [item.value for item in at.error if "unexpected problem" in item.value]
    assert not unexpected, unexpected


def messages(at: AppTest, kind: str = "error") -> list[str]:
    return [str(item.value) for item in getattr(at, kind)]
