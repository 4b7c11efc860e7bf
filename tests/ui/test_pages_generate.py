"""The Generate page: jobs submitted and followed, results with seeds, reuse, img2img, inpaint, errors."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from limner.ui import navigation
from limner.ui.components.jobs import TrackedJob
from tests.ui.conftest import AppFactory, assert_clean, mask_png, messages, png

GENERATE = "gen.submit"


def fill(at: AppTest, prompt: str, **numbers: float) -> None:
    at.text_area(key="gen.prompt").input(prompt)
    for name, value in numbers.items():
        at.number_input(key=f"gen.{name}").set_value(value)


def captions(at: AppTest) -> list[list[str]]:
    return [image.captions for image in at.image if any(image.captions)]


def result(at: AppTest) -> TrackedJob:
    tracked = at.session_state["gen.job"]
    assert isinstance(tracked, TrackedJob)
    return tracked


def test_generate_shows_pictures_with_seeds_then_reuse_fills_the_form(studio: AppFactory) -> None:
    at = studio(navigation.GENERATE)
    fill(at, "a generate page apple", seed=21, count=2, steps=4)
    at.button(key=GENERATE).click().run()
    assert_clean(at)
    tracked = result(at)
    assert tracked.status == "succeeded"
    assert len(tracked.image_ids) == 2
    assert captions(at) == [["seed 21"], ["seed 22"]]
    assert not at.get("progress")  # the bar is gone once the job has ended
    at.button(key=f"gen.job:reuse:{tracked.image_ids[1]}").click().run()
    assert_clean(at)
    assert at.text_area(key="gen.prompt").value == "a generate page apple"
    assert at.number_input(key="gen.seed").value == 22
    assert at.number_input(key="gen.count").value == 1
    assert at.number_input(key="gen.steps").value == 4
    assert at.selectbox(key="gen.size").value == "64x64"
    assert result(at).id == tracked.id  # the results stay
    assert captions(at) == [["seed 21"], ["seed 22"]]


def test_img2img_from_an_uploaded_picture(studio: AppFactory) -> None:
    at = studio(navigation.GENERATE)
    fill(at, "a generate page pear", seed=3, steps=4)
    at.file_uploader(key="gen.init").upload("start.png", png("green"), "image/png")
    at.slider(key="gen.strength").set_value(0.5)
    at.button(key=GENERATE).click().run()
    assert_clean(at)
    assert result(at).status == "succeeded", messages(at)
    assert captions(at) == [["seed 3"]]


def test_inpaint_with_a_mask(studio: AppFactory, tiny_models: dict[str, Path]) -> None:
    at = studio(navigation.GENERATE)
    fill(at, "a generate page plum", seed=5, steps=4)
    at.text_input(key="gen.model").input(str(tiny_models["inpaint"]))
    at.file_uploader(key="gen.init").upload("start.png", png("purple"), "image/png")
    at.radio(key="gen.mask_mode").set_value("file").run()
    at.file_uploader(key="gen.mask").upload("mask.png", mask_png(), "image/png")
    at.button(key=GENERATE).click().run()
    assert_clean(at)
    assert result(at).status == "succeeded", messages(at)


def typed_size(studio: AppFactory, size: str) -> AppTest:
    """Generate with a size typed into the size picker (a new option, set before the page is drawn)."""
    at = studio()
    at.session_state["gen.size"] = size
    at.switch_page(navigation.GENERATE.path).run()
    return at


def test_bad_size_is_refused_before_anything_is_sent(studio: AppFactory) -> None:
    at = typed_size(studio, "huge")
    fill(at, "never sent")
    at.button(key=GENERATE).click().run()
    assert_clean(at)
    assert messages(at) == ["size 'huge': write it as WIDTHxHEIGHT, e.g. 512x512"]
    assert "gen.job" not in at.session_state


def test_server_refusal_is_shown_with_its_field(studio: AppFactory) -> None:
    at = typed_size(studio, "60x64")
    fill(at, "odd size")
    at.button(key=GENERATE).click().run()
    assert_clean(at)
    assert len(messages(at)) == 1
    assert "multiple of 8" in messages(at)[0]


def test_a_mask_without_a_start_picture_is_explained(studio: AppFactory) -> None:
    at = studio(navigation.GENERATE)
    fill(at, "mask only")
    at.radio(key="gen.mask_mode").set_value("file").run()
    at.file_uploader(key="gen.mask").upload("mask.png", mask_png(), "image/png")
    at.button(key=GENERATE).click().run()
    assert_clean(at)
    assert messages(at) == ["A mask needs a start picture: add one above, or remove the mask."]


def test_an_unknown_model_is_explained_with_what_to_do(studio: AppFactory, tmp_path: Path) -> None:
    at = studio(navigation.GENERATE)
    fill(at, "a missing model")
    at.text_input(key="gen.model").input(str(tmp_path / "no-such-model"))
    at.button(key=GENERATE).click().run()
    assert_clean(at)
    errors = messages(at)
    assert len(errors) == 1
    assert errors == ["That model is not on this server. Pick one from the list, or ask an administrator to add it."]


def test_history_and_form_survive_a_visit_to_another_page(studio: AppFactory) -> None:
    at = studio(navigation.GENERATE)
    fill(at, "a history apple", seed=8, steps=3)
    at.button(key=GENERATE).click().run()
    assert result(at).status == "succeeded"
    at.switch_page(navigation.GALLERY.path).run()
    at.switch_page(navigation.GENERATE.path).run()
    assert_clean(at)
    assert at.text_area(key="gen.prompt").value == "a history apple"
    assert at.number_input(key="gen.seed").value == 8
    assert any("a history apple" in item.value for item in at.markdown)
    tracked = result(at)
    at.button(key=f"gen.history:reuse:{tracked.id}").click().run()
    assert_clean(at)
    assert at.number_input(key="gen.steps").value == 3
    assert result(at).id == tracked.id


def test_jobs_ask_for_previews() -> None:
    from limner.ui.job_spec import JobSpec

    assert JobSpec(prompt="x").body()["preview"] is True
