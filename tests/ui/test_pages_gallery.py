"""Gallery (search, open, parameters, delete, hand-offs to Generate and Edit) and the Edit page."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from limner.ui import navigation
from limner.ui.api_types import MissingCapability
from limner.ui.client import LimnerClient, Upload
from limner.ui.job_spec import JobSpec
from tests.api.live_server import LiveServer
from tests.ui.conftest import EVERYTHING, AppFactory, assert_clean, messages, png

PROMPT = "a gallery page lemon"


@pytest.fixture(scope="module")
def pictures(server: LiveServer, token: str) -> list[str]:
    client = LimnerClient(server.url, token)
    job = client.submit(JobSpec(prompt=PROMPT, seed=31, steps=3, num_images=2))
    final = list(client.follow(job.id, timeout=60))[-1]
    assert final.status == "succeeded"
    return list(final.result_image_ids)


def search(at: AppTest, text: str) -> AppTest:
    at.text_input(key="gal.q").input(text).run()
    assert_clean(at)
    return at


def test_search_finds_the_pictures_and_open_shows_parameters(studio: AppFactory, pictures: list[str]) -> None:
    at = search(studio(navigation.GALLERY), "gallery page lemon")
    assert "2 pictures, newest first" in [caption.value for caption in at.caption]
    assert sorted(image.captions[0] for image in at.image) == [f"{PROMPT} · seed 31", f"{PROMPT} · seed 32"]
    at.button(key=f"gal:open:{pictures[0]}").click().run()
    assert_clean(at)
    rows = at.table[0].value["Value"].to_dict()
    assert rows["Prompt"] == PROMPT
    assert rows["Seed"] == "31"
    assert rows["Steps"] == "3"
    assert rows["Size"] == "64x64"
    assert rows["Id"] == pictures[0]


def test_filters_narrow_the_gallery(studio: AppFactory, pictures: list[str]) -> None:
    at = search(studio(navigation.GALLERY), "gallery page lemon")
    at.selectbox(key="gal.task").set_value("img2img").run()
    assert_clean(at)
    assert messages(at, "info") == ["No pictures match."]
    at.selectbox(key="gal.task").set_value("txt2img").run()
    at.selectbox(key="gal.kind").set_value("upload").run()
    assert messages(at, "info") == ["No pictures match."]


def test_reuse_and_img2img_hand_off_to_generate(studio: AppFactory, pictures: list[str]) -> None:
    at = search(studio(navigation.GALLERY), "gallery page lemon")
    at.button(key=f"gal:open:{pictures[1]}").click().run()
    at.button(key="gal.reuse").click().run()
    assert_clean(at)
    assert [title.value for title in at.title] == ["Generate"]
    assert at.text_area(key="gen.prompt").value == PROMPT
    assert at.number_input(key="gen.seed").value == 32

    at = search(studio(navigation.GALLERY), "gallery page lemon")
    at.button(key=f"gal:open:{pictures[1]}").click().run()
    at.button(key="gal.img2img").click().run()
    assert_clean(at)
    assert at.session_state["gen.init_id"] == pictures[1]
    assert at.number_input(key="gen.seed").value is None
    at.switch_page(navigation.GENERATE.path)  # AppTest stays on the page it was told; a browser would follow
    at.button(key="gen.submit").click().run()
    assert_clean(at)
    assert at.session_state["gen.job"].status == "succeeded", messages(at)


def test_send_to_edit_then_edit_shows_before_and_after(
    studio: AppFactory, pictures: list[str], tiny_models: dict[str, Path]
) -> None:
    at = search(studio(navigation.GALLERY, capabilities=EVERYTHING), "gallery page lemon")
    at.button(key=f"gal:open:{pictures[0]}").click().run()
    at.button(key="gal.edit").click().run()
    assert_clean(at)
    assert [title.value for title in at.title] == ["Edit a photo"]
    assert at.session_state["edit.source_id"] == pictures[0]
    at.switch_page(navigation.EDIT.path)
    at.radio(key="edit.mode").set_value("Instruction")
    at.text_input(key="edit.instruction").input("make it blue")
    at.text_input(key="edit.model").input(str(tiny_models["edit"]))
    at.number_input(key="edit.steps").set_value(3)
    at.button(key="FormSubmitter:edit-Edit").click().run()
    assert_clean(at)
    assert at.session_state["edit.job"].status == "succeeded", messages(at)
    assert [image.captions for image in at.image][-2:] == [["Before"], ["After"]]


def test_edit_explains_why_it_is_unavailable_on_a_server_that_cannot_edit(studio: AppFactory) -> None:
    """A server whose models cannot edit (the default offline one edits with the built-in limner-tiny-edit)."""
    missing = MissingCapability(capability="edit", reason="Ask an administrator to install an InstructPix2Pix model.")
    cannot_edit = EVERYTHING.model_copy(update={"tasks": {**EVERYTHING.tasks, "edit": False}, "missing": (missing,)})
    at = studio(navigation.EDIT, capabilities=cannot_edit)
    assert_clean(at)
    assert "edit.mode" not in at.session_state  # no form to fill in vain
    text = " ".join(item.value for item in at.markdown)
    assert "Editing a photo by instruction is not available on this server." in text
    assert "InstructPix2Pix" in text


def test_edit_an_uploaded_photo_with_the_cartoonize_preset_runs_offline(studio: AppFactory) -> None:
    """The cartoonizer journey on the offline server: the preset's hub model is missing, limner-tiny-edit runs."""
    at = studio(navigation.EDIT, capabilities=EVERYTHING)
    at.file_uploader(key="edit.file").upload("photo.png", png("teal"), "image/png")
    at.number_input(key="edit.steps").set_value(2)
    at.button(key="FormSubmitter:edit-Edit").click().run()
    assert_clean(at)
    assert at.session_state["edit.job"].status == "succeeded", messages(at)


def test_edit_an_uploaded_photo_with_a_preset_reports_what_the_server_says(studio: AppFactory) -> None:
    """A model the server cannot load (a hub id it does not have, offline): the failure is a sentence."""
    at = studio(navigation.EDIT, capabilities=EVERYTHING)
    at.file_uploader(key="edit.file").upload("photo.png", png("teal"), "image/png")
    at.text_input(key="edit.model").input("instruction-tuning-sd/not-installed")
    at.number_input(key="edit.steps").set_value(2)
    at.button(key="FormSubmitter:edit-Edit").click().run()
    assert_clean(at)
    errors = messages(at)
    assert len(errors) == 1
    assert "LIMNER_" not in errors[0]


def test_edit_needs_a_photo(studio: AppFactory) -> None:
    at = studio(navigation.EDIT, capabilities=EVERYTHING)
    at.button(key="FormSubmitter:edit-Edit").click().run()
    assert messages(at) == ["Choose a photo to edit first."]


def test_delete_asks_first(studio: AppFactory, server: LiveServer, token: str) -> None:
    client = LimnerClient(server.url, token)
    job = client.submit(JobSpec(prompt="a gallery page doomed fig", seed=1, steps=2))
    image_id = list(client.follow(job.id, timeout=60))[-1].result_image_ids[0]
    at = search(studio(navigation.GALLERY), "doomed fig")
    at.button(key=f"gal:open:{image_id}").click().run()
    at.button(key="gal.delete").click().run()
    assert messages(at, "warning") == ["Delete this picture for good?"]
    at.button(key="gal.delete_no").click().run()
    assert client.details(image_id).image.id == image_id  # still there
    at.button(key="gal.delete").click().run()
    at.button(key="gal.delete_yes").click().run()
    assert_clean(at)
    assert "gal.open" not in at.session_state
    assert messages(at, "info") == ["No pictures match."]


def test_uploads_hide_behind_the_kind_filter(studio: AppFactory, server: LiveServer, token: str) -> None:
    upload = LimnerClient(server.url, token).upload(Upload("hidden.png", png("navy")))
    at = studio(navigation.GALLERY)
    assert at.selectbox(key="gal.kind").value == "output"
    shown = [button.key for button in at.button if str(button.key).startswith("gal:open:")]
    assert f"gal:open:{upload.id}" not in shown
    at.selectbox(key="gal.kind").set_value("upload").run()
    assert_clean(at)
    assert f"gal:open:{upload.id}" in [button.key for button in at.button]


def test_lightbox_steps_through_the_page(studio: AppFactory, pictures: list[str]) -> None:
    at = search(studio(navigation.GALLERY), "gallery page lemon")
    shown = [
        str(button.key).removeprefix("gal:open:") for button in at.button if str(button.key).startswith("gal:open:")
    ]
    assert set(pictures) <= set(shown)
    at.button(key=f"gal:open:{shown[0]}").click().run()
    assert_clean(at)
    assert at.button(key="gal.previous").disabled
    assert at.table[0].value["Value"].to_dict()["Id"] == shown[0]
    at.button(key="gal.next").click().run()
    assert_clean(at)
    assert at.table[0].value["Value"].to_dict()["Id"] == shown[1]
    assert not at.button(key="gal.previous").disabled
    assert f"Picture 2 of {len(shown)} on this page" in [caption.value for caption in at.caption]
