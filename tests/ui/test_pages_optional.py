"""Pages whose backend may be missing: they say so plainly; where it exists they work (batch, characters)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from streamlit.testing.v1 import AppTest

from limner.ui import navigation
from limner.ui.features import BATCHES, CHARACTERS, MODEL_IMPORT, MODELS, PROMPT_IDEAS, TRAININGS, ServerFeatures
from limner.ui.views import character as character_view
from limner.ui.views.models import training_config
from tests.ui.conftest import EVERYTHING, AppFactory, assert_clean, messages, png

BARE = ServerFeatures(frozenset({"POST /v1/jobs", "GET /v1/images", "POST /v1/uploads"}))


def test_pages_without_their_backend_say_not_available(studio: AppFactory) -> None:
    expected = {
        navigation.CHARACTER: ["**Saved characters: not available on this server yet.**"],
        navigation.MODELS: [
            "**The model registry: not available on this server yet.**",
            "**Training: not available on this server yet.**",
        ],
        navigation.PROMPT_LAB: ["**Prompt ideas to edit before running: not available on this server yet.**"],
    }
    for page, starts in expected.items():
        at = studio(page, features=BARE)
        assert_clean(at)
        notices = messages(at, "info")
        assert len(notices) == len(starts), notices
        assert all(notice.startswith(start) for notice, start in zip(notices, starts, strict=True)), notices
        assert all("(checked in its /openapi.json)" in notice for notice in notices)


def _without(at: AppTest, *routes: str) -> ServerFeatures:
    return ServerFeatures(at.session_state["features"].routes - set(routes))


def _fill_rows(at: AppTest, rows: list[dict[str, str]]) -> None:
    at.session_state["lab.rows"] = rows
    at.run()


ROWS = [
    {"title": "Apple", "prompt": "a prompt lab apple", "negative_prompt": ""},
    {"title": "", "prompt": "a prompt lab pear", "negative_prompt": "blurry"},
    {"title": "empty rows are skipped", "prompt": " ", "negative_prompt": ""},
]


def test_prompt_lab_batch_on_the_server(studio: AppFactory) -> None:
    at = studio(navigation.PROMPT_LAB)
    assert at.session_state["features"].has(BATCHES)  # limner's own server has them; the fallback is tested below
    _fill_rows(at, ROWS)
    at.text_input(key="lab.title").input("Fruit bowl")
    at.number_input(key="lab.steps").set_value(3)
    at.number_input(key="lab.seed").set_value(100)
    at.button(key="FormSubmitter:batch-Run 2 prompts").click().run()
    assert_clean(at)
    batch = at.session_state["lab.batch"]
    assert batch.server_id
    assert [item.status for item in batch.items] == ["succeeded", "succeeded"]
    assert [item.title for item in batch.items] == ["Apple", "a prompt lab pear"]
    with zipfile.ZipFile(io.BytesIO(at.session_state["lab.zip"])) as archive:
        names = archive.namelist()
    assert sum(name.endswith(".png") for name in names) == 2
    assert sum(name.endswith("info.md") for name in names) == 2
    assert at.get("download_button")


def test_prompt_lab_theme_batch_with_offline_ideas(studio: AppFactory) -> None:
    at = studio(navigation.PROMPT_LAB)
    assert at.session_state["features"].has(BATCHES)
    at.text_input(key="lab.theme").input("tiny fruit")
    at.number_input(key="lab.count").set_value(2)
    at.checkbox(key="lab.offline").check()
    at.button(key="FormSubmitter:theme_batch-Write and draw them").click().run()
    assert_clean(at)
    items = at.session_state["lab.batch"].items
    assert len(items) == 2
    assert all(item.prompt for item in items)
    assert all(item.finished for item in items)


def test_prompt_lab_without_server_batches_runs_one_job_per_prompt(studio: AppFactory) -> None:
    at = studio(navigation.PROMPT_LAB)
    at = studio(navigation.PROMPT_LAB, features=_without(at, "POST /v1/batches"))
    _fill_rows(at, ROWS)
    at.text_input(key="lab.title").input("Fruit bowl")
    at.number_input(key="lab.steps").set_value(3)
    at.number_input(key="lab.seed").set_value(100)
    at.button(key="FormSubmitter:batch-Run 2 prompts").click().run()
    assert_clean(at)
    batch = at.session_state["lab.batch"]
    assert batch.server_id is None
    assert [item.status for item in batch.items] == ["succeeded", "succeeded"]
    assert [item.title for item in batch.items] == ["Apple", "item 2"]
    with zipfile.ZipFile(io.BytesIO(at.session_state["lab.zip"])) as archive:
        assert sorted(archive.namelist()) == [
            "fruit-bowl/001-1-100.png",
            "fruit-bowl/002-1-101.png",
            "fruit-bowl/info.json",
            "fruit-bowl/info.md",
        ]
        info = json.loads(archive.read("fruit-bowl/info.json"))
    assert info["items"][1]["negative_prompt"] == "blurry"
    assert info["items"][1]["images"][0]["parameters"]["request"]["steps"] == 3


def test_prompt_lab_fallback_records_a_refused_item_and_goes_on(studio: AppFactory) -> None:
    at = studio(navigation.PROMPT_LAB)
    at = studio(navigation.PROMPT_LAB, features=_without(at, "POST /v1/batches"))
    _fill_rows(
        at,
        [
            {"title": "ok", "prompt": "a prompt lab plum", "negative_prompt": ""},
            {"title": "bad", "prompt": "x" * 4001, "negative_prompt": ""},
        ],
    )
    at.number_input(key="lab.steps").set_value(2)
    at.button(key="FormSubmitter:batch-Run 2 prompts").click().run()
    assert_clean(at)
    items = at.session_state["lab.batch"].items
    assert [item.status for item in items] == ["succeeded", "rejected"]
    assert items[1].error == "Prompt: must be at most 4000 characters long."


def test_models_registry_import_use_and_remove(studio: AppFactory, tiny_models: dict[str, Path]) -> None:
    at = studio(navigation.MODELS)
    features = at.session_state["features"]
    assert features.has(MODELS)
    assert features.has(MODEL_IMPORT)
    assert_clean(at)
    at.text_input(key="models.path").input(str(tiny_models["txt2img"]))
    at.text_input(key="models.import_name").input("tiny-ui")
    at.button(key="FormSubmitter:import-Import").click().run()
    try:
        assert_clean(at)
        assert messages(at, "success") == ["Imported as tiny-ui."]
        assert "tiny-ui" in list(at.dataframe[0].value["name"])  # the list is fresh at once
        generate = studio(navigation.GENERATE)
        assert generate.selectbox(key="gen.model").options[:2] == ["(server default): tiny-txt2img", "tiny-ui"]
        generate.selectbox(key="gen.model").set_value("tiny-ui")
        generate.text_area(key="gen.prompt").input("a registry apple")
        generate.number_input(key="gen.steps").set_value(2)
        generate.button(key="gen.submit").click().run()
        assert_clean(generate)
        assert generate.session_state["gen.job"].status == "succeeded", messages(generate)
    finally:
        at.selectbox(key="models.remove").set_value("tiny-ui")
        at.button(key="models.remove_go").click().run()
    assert_clean(at)
    assert not at.dataframe or "tiny-ui" not in list(at.dataframe[0].value["name"])


def test_training_form_checks_its_inputs(studio: AppFactory) -> None:
    at = studio(navigation.MODELS)
    assert at.session_state["features"].has(TRAININGS)
    at.button(key="FormSubmitter:training-Start training").click().run()
    assert_clean(at)
    assert messages(at) == ["A name, an instance prompt and a zip of pictures are needed."]


def test_training_config_follows_the_form() -> None:
    values = {
        "instance_prompt": "a sks dog",
        "steps": 50,
        "class_prompt": "a dog",
        "prior": True,
        "validation_every": 10,
        "validation_prompt": "",
    }
    assert training_config(values) == {
        "instance_prompt": "a sks dog",
        "steps": 50,
        "class_prompt": "a dog",
        "prior_preservation": True,
        "validation_every": 10,
        "validation_prompt": "a sks dog",
    }
    values.update(class_prompt="", validation_every=0)
    assert training_config(values) == {"instance_prompt": "a sks dog", "steps": 50}


def test_character_page_explains_why_characters_are_unavailable(studio: AppFactory) -> None:
    at = studio(navigation.CHARACTER)  # the test server: no IP-Adapter, no remote provider
    assert_clean(at)
    assert "char.prompt" not in at.session_state  # no form to fill in vain
    text = " ".join(item.value for item in at.markdown)
    assert "Making character pictures is not available on this server." in text
    assert "IP-Adapter" in text
    assert "LIMNER_" not in text


def test_character_page_with_the_servers_characters(studio: AppFactory) -> None:
    at = studio(navigation.CHARACTER, capabilities=EVERYTHING)
    assert_clean(at)
    assert at.session_state["features"].has(CHARACTERS)  # the page without them is tested with BARE above
    at.file_uploader(key="char.files").upload("ref.png", png("red"), "image/png").run()
    assert at.get("image"), "a dropped reference picture shows as a thumbnail before the form is sent"
    at.text_area(key="char.prompt").input("reading on a beach")
    at.button(key="FormSubmitter:character-Create").click().run()
    assert_clean(at)
    tracked = at.session_state["char.job"]
    # The tiny test model has no IP-Adapter: the server's reason is shown, with no traceback.
    assert tracked.status == "succeeded" or messages(at)[0].startswith("The job failed.")


def test_character_form_explains_what_is_missing(studio: AppFactory) -> None:
    at = studio(navigation.CHARACTER, capabilities=EVERYTHING)
    assert at.session_state["features"].has(CHARACTERS)
    at.text_area(key="char.prompt").input("a scene")
    at.button(key="FormSubmitter:character-Create").click().run()
    assert messages(at) == ["Add at least one reference picture."]
    at.radio(key="char.provider").set_value("Remote provider")
    at.text_input(key="char.model").input("instantcharacter")
    at.button(key="FormSubmitter:character-Create").click().run()
    assert "replicate:owner/model" in messages(at)[0]


def test_remote_character_without_a_model_uses_the_instantcharacter_preset() -> None:
    values = {"size": "", "scale": 0.8, "adapter": "", "style": "ghibli", "prompt": "at a bar", "seed": None,
              "model": "", "provider": character_view.REMOTE}  # fmt: skip
    spec = character_view.build_spec(values, ["img1"], None)
    assert spec.preset == "instantcharacter"
    assert spec.model is None
    local = character_view.build_spec({**values, "provider": character_view.LOCAL}, ["img1"], None)
    assert local.preset is None


def test_prompt_lab_drafts_ideas_to_edit(studio: AppFactory) -> None:
    at = studio(navigation.PROMPT_LAB)
    assert at.session_state["features"].has(PROMPT_IDEAS)
    at.text_input(key="lab.ideas_theme").input("lighthouses")
    at.number_input(key="lab.ideas_count").set_value(3)
    at.checkbox(key="lab.ideas_offline").check()
    at.button(key="FormSubmitter:ideas-Suggest prompts to edit").click().run()
    assert_clean(at)
    rows = at.session_state["lab.rows"]
    assert len(rows) == 3
    assert all(row["prompt"] for row in rows)
