"""Ideas, data providers (built-in and user-extended), few-shot examples and the offline generator."""

from __future__ import annotations

from pathlib import Path

import pytest

from limner.core.errors import InvalidRequestError
from limner.prompts.data_providers import load_data_providers
from limner.prompts.ideas import PromptIdea
from limner.prompts.offline import OfflineIdeaGenerator, smart_title


def test_idea_normalises_tags_and_text() -> None:
    idea = PromptIdea(title="  Neon\x07 Rain ", prompt="rain, neon", metatags="#neon, Rain, neon, ,rain ")
    assert idea.title == "Neon  Rain"
    assert idea.metatags == ["neon", "Rain"]
    with pytest.raises(ValueError, match="prompt"):
        PromptIdea(title="x", prompt="")


def test_builtin_data_has_every_provider_and_examples() -> None:
    data = load_data_providers()
    for name in ("themes", "elements", "environments", "roles", "lighting", "moods", "negative_prompts"):
        assert len(data.choices(name)) >= 4
    kinds = {choice.kind for choice in data.choices("roles")}
    assert kinds == {"photographer_styles", "render_engines", "art_movements"}
    assert len(data.examples) >= 3
    assert all(example.idea.prompt for example in data.examples)


def test_user_folder_extends_providers_and_examples(tmp_path: Path) -> None:
    (tmp_path / "themes.toml").write_text('items = ["underwater opera"]\n')
    (tmp_path / "roles.toml").write_text('[drone_pilots]\ntemplate = "seen by {item}"\nitems = ["a racing drone"]\n')
    (tmp_path / "examples.jsonl").write_text(
        '{"theme": "opera", "title": "Aria", "prompt": "a diva singing to fish", "metatags": ["opera"]}\n'
    )
    data = load_data_providers(tmp_path)
    builtin = load_data_providers()
    assert "underwater opera" in [c.text for c in data.choices("themes")]
    assert len(data.choices("themes")) == len(builtin.choices("themes")) + 1
    assert ("seen by a racing drone", "drone_pilots") in [(c.text, c.kind) for c in data.choices("roles")]
    assert data.examples[-1].idea.title == "Aria"


def test_bad_user_data_is_reported_with_its_place(tmp_path: Path) -> None:
    (tmp_path / "moods.toml").write_text("items = [1, 2]\n")
    with pytest.raises(InvalidRequestError, match=r"moods\.toml: items must be a list of strings"):
        load_data_providers(tmp_path)
    bad = tmp_path / "extra.jsonl"
    bad.write_text('{"title": "ok", "prompt": "fine"}\n{"title": "no prompt"}\n')
    with pytest.raises(InvalidRequestError, match=r"extra\.jsonl line 2: prompt"):
        load_data_providers(None, [bad])


def test_offline_generator_is_deterministic_with_a_seed() -> None:
    data = load_data_providers()
    first = OfflineIdeaGenerator(data, seed=42).generate(8)
    again = OfflineIdeaGenerator(data, seed=42).generate(8)
    other = OfflineIdeaGenerator(data, seed=43).generate(8)
    assert first == again
    assert first != other
    assert len({idea.title.lower() for idea in first}) == 8
    assert all(idea.prompt and idea.negative_prompt and idea.metatags for idea in first)


def test_offline_generator_keeps_to_the_theme_and_says_what_it_is() -> None:
    generator = OfflineIdeaGenerator(load_data_providers(), seed=1)
    ideas = generator.generate(3, "cyberpunk city")
    assert all("cyberpunk city" in idea.prompt and "cyberpunk city" in idea.metatags for idea in ideas)
    assert "no LLM configured" in generator.description
    assert "seed 1" in generator.description


def test_smart_title() -> None:
    assert smart_title("the lantern of the misty forest") == "The Lantern of the Misty Forest"
    assert smart_title("cyberpunk city: a fox") == "Cyberpunk City: A Fox"
