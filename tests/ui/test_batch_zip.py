"""The batch zip: pictures named by index and seed, info.md and info.json describing them."""

from __future__ import annotations

import io
import json
import zipfile

from limner.ui.batch_zip import BatchEntry, BatchPicture, build_zip, folder_name


def test_zip_layout_and_info() -> None:
    entries = [
        BatchEntry(
            "Neon alley",
            "a neon alley",
            "blurry",
            pictures=(BatchPicture("i1", 7, b"png-1", {"request": {"steps": 4}, "width": 64, "height": 64}),),
        ),
        BatchEntry("Broken", "a refused prompt", status="rejected", error="too many pixels"),
    ]
    data = build_zip("Cyberpunk city / night", entries)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = sorted(archive.namelist())
        assert names == [
            "cyberpunk-city-night/001-1-7.png",
            "cyberpunk-city-night/info.json",
            "cyberpunk-city-night/info.md",
        ]
        assert archive.read("cyberpunk-city-night/001-1-7.png") == b"png-1"
        info = json.loads(archive.read("cyberpunk-city-night/info.json"))
        markdown = archive.read("cyberpunk-city-night/info.md").decode()
    assert info["items"][0]["images"][0] == {
        "file": "001-1-7.png",
        "image_id": "i1",
        "seed": 7,
        "parameters": {"request": {"steps": 4}, "width": 64, "height": 64},
    }
    assert info["items"][1]["status"] == "rejected"
    assert "# Cyberpunk city / night" in markdown
    assert "**Negative prompt:** blurry" in markdown
    assert "seed: 7" in markdown
    assert "steps: 4" in markdown
    assert "**Status:** rejected (too many pixels)" in markdown


def test_folder_name_is_the_batch_slug() -> None:
    assert folder_name("../../etc/passwd") == "etc-passwd"
    assert folder_name("???") == "batch"
    assert folder_name("Café au lait") == "cafe-au-lait"  # the same name ``limner batch`` gives a title
