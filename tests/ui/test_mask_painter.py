"""The mask painter's answer (a PNG data URL from the browser) becomes a black-and-white mask or nothing."""

from __future__ import annotations

import base64
import io

from PIL import Image

from limner.ui.components.mask_painter import mask_from_data_url, picture_data_url


def _url(picture: Image.Image) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_a_painted_mask_is_black_and_white_at_the_pictures_size() -> None:
    painted = Image.new("RGBA", (32, 32), (0, 0, 0, 255))
    painted.paste((250, 250, 250, 255), (8, 8, 24, 24))
    data = mask_from_data_url(_url(painted), (64, 64))
    assert data is not None
    with Image.open(io.BytesIO(data)) as mask:
        assert mask.mode == "L"
        assert mask.size == (64, 64)
        assert set(mask.getdata()) == {0, 255}


def test_nothing_painted_or_not_a_png_is_no_mask() -> None:
    assert mask_from_data_url(_url(Image.new("RGB", (16, 16), "black")), (16, 16)) is None
    assert mask_from_data_url("data:image/png;base64,not base64!", (16, 16)) is None
    assert mask_from_data_url(None, (16, 16)) is None
    assert mask_from_data_url("data:image/jpeg;base64,AAAA", (16, 16)) is None


def test_the_start_picture_goes_to_the_browser_as_png_with_its_size() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (40, 24), "teal").save(buffer, format="PNG")
    url, width, height = picture_data_url(buffer.getvalue())
    assert url.startswith("data:image/png;base64,")
    assert (width, height) == (40, 24)
