"""The Generate page's prompt extras: every combination of {a|b} choices, one picture each."""

from __future__ import annotations

from limner.ui import navigation
from limner.ui.components.jobs import TrackedJob
from tests.ui.conftest import AppFactory, assert_clean, messages


def test_every_combination_of_the_choices_makes_a_picture(studio: AppFactory) -> None:
    at = studio(navigation.GENERATE)
    at.text_area(key="gen.prompt").input("a {red|green} generate page (apple:1.2)")
    at.number_input(key="gen.seed").set_value(5)
    at.number_input(key="gen.steps").set_value(2)
    at.checkbox(key="gen.combinatorial").check()
    at.button(key="gen.submit").click().run()
    assert_clean(at)
    tracked = at.session_state["gen.job"]
    assert isinstance(tracked, TrackedJob)
    assert tracked.status == "succeeded", messages(at)
    assert len(tracked.image_ids) == 2
    assert [image.captions for image in at.image if any(image.captions)] == [["seed 5"], ["seed 6"]]
