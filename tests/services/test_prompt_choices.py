"""Wildcard prompts through the one generation service: one image per expanded prompt, each recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from limner.config import Settings
from limner.core.errors import InvalidRequestError
from limner.core.progress import ProgressEvent
from limner.engines.local.engine import LocalEngine
from limner.services.generation import GenerationService

FIELDS = {"steps": 1, "width": 32, "height": 32, "seed": 11}


@pytest.fixture
def service(settings: Settings, engine: LocalEngine, tmp_path: Path) -> GenerationService:
    (tmp_path / "creatures.txt").write_text("fox\nowl\nhare\nlynx\n", encoding="utf-8")
    return GenerationService(settings.model_copy(update={"wildcards_dir": tmp_path}), engine)


def test_each_image_gets_its_own_expanded_prompt_and_seed(service: GenerationService) -> None:
    template = "a __creatures__ in {rain|snow}, (soft light:1.2)"
    request = service.prepare({"prompt": template, "num_images": 3, **FIELDS})
    events: list[ProgressEvent] = []
    result = service.run(request, progress=events.append)
    records = [image.record for image in result.images]
    assert [record.seed for record in records] == [11, 12, 13]
    for index, record in enumerate(records):
        assert record.index == index
        assert record.prompt_template == template
        assert record.request.seed == record.seed
        assert record.request.num_images == 1
        assert "__" not in record.request.prompt
        assert "{" not in record.request.prompt
        assert record.request.prompt.endswith(", (soft light:1.2)")  # weights survive expansion
    assert [event.step for event in events] == [1, 2, 3]
    assert events[-1].total_steps == 3
    again = service.run(request)
    assert [image.record.request.prompt for image in again.images] == [record.request.prompt for record in records]
    assert [image.image.tobytes() for image in again.images] == [image.image.tobytes() for image in result.images]
    # A record's request alone makes that very image again.
    second = service.run(records[1].request)
    assert second.images[0].image.tobytes() == result.images[1].image.tobytes()


def test_combinatorial_makes_every_combination(service: GenerationService) -> None:
    request = service.prepare({"prompt": "a {red|blue} __creatures__", "combinatorial": True, **FIELDS})
    prompts = [image.record.request.prompt for image in service.run(request).images]
    assert len(prompts) == 8 == len(set(prompts))
    twice = service.prepare({"prompt": "a {red|blue} {fox|owl}", "combinatorial": True, "num_images": 2, **FIELDS})
    assert len(service.run(twice).images) == 8


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"prompt": "{a|b|c|d|e} {f|g|h|i}", "combinatorial": True}, "more than 16 combinations"),
        ({"prompt": "{a|b} {c|d}", "combinatorial": True, "num_images": 5}, "more than 3 combinations"),
        ({"prompt": "a __unicorns__"}, "no wildcard file for __unicorns__"),
        ({"prompt": "a {red|blue fox"}, "do not parse"),
    ],
)
def test_bad_templates_are_refused_before_anything_runs(
    service: GenerationService, fields: dict[str, object], fragment: str
) -> None:
    with pytest.raises(InvalidRequestError, match=fragment):
        service.prepare({**FIELDS, **fields})
