"""AUTOMATIC1111 parameter text and limner JSON: written and read back."""

from __future__ import annotations

from limner.core.metadata import (
    from_limner_json,
    parse_a1111_parameters,
    to_a1111_parameters,
    to_limner_json,
)
from limner.core.records import ImageRecord
from limner.core.requests import GenerationRequest, LoraSpec


def make_record(**fields: object) -> ImageRecord:
    request = GenerationRequest.model_validate(
        {"prompt": "a fox, snow", "negative_prompt": "blurry", "steps": 25, "scheduler": "euler_a", **fields}
    )
    return ImageRecord(request=request, seed=7, width=512, height=512, model_name="sd-turbo", limner_version="1.0")


def test_a1111_text_has_the_standard_layout() -> None:
    text = to_a1111_parameters(make_record())
    lines = text.split("\n")
    assert lines[0] == "a fox, snow"
    assert lines[1] == "Negative prompt: blurry"
    assert lines[2].startswith("Steps: 25, Sampler: Euler a, CFG scale: 7, Seed: 7, Size: 512x512, Model: sd-turbo")


def test_a1111_text_round_trips() -> None:
    record = make_record(loras=[LoraSpec(ref="a.safetensors", weight=0.5)], task="img2img", init_image="x")
    parsed = parse_a1111_parameters(to_a1111_parameters(record))
    assert parsed["Prompt"] == "a fox, snow"
    assert parsed["Negative prompt"] == "blurry"
    assert parsed["Seed"] == "7"
    assert parsed["Denoising strength"] == "0.75"
    assert parsed["Lora hashes"] == "a.safetensors:0.5"
    assert parsed["Task"] == "img2img"


def test_parses_text_written_by_automatic1111() -> None:
    text = (
        "masterpiece, a castle\non a hill\nNegative prompt: lowres, bad anatomy\n"
        "Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 123, Size: 512x768, Model hash: 6ce0161689, "
        'Model: v1-5, Lora hashes: "x: abc, y: def", Version: v1.9.4'
    )
    parsed = parse_a1111_parameters(text)
    assert parsed["Prompt"] == "masterpiece, a castle\non a hill"
    assert parsed["Negative prompt"] == "lowres, bad anatomy"
    assert parsed["Sampler"] == "DPM++ 2M Karras"
    assert parsed["Lora hashes"] == "x: abc, y: def"
    assert parsed["Version"] == "v1.9.4"


def test_prompt_only_text() -> None:
    assert parse_a1111_parameters("just a prompt") == {"Prompt": "just a prompt", "Negative prompt": ""}


def test_limner_json_round_trips_exactly() -> None:
    record = make_record()
    assert from_limner_json(to_limner_json(record)) == record


def test_a_remote_image_records_only_what_its_provider_was_sent() -> None:
    record = make_record(seed=3).model_copy(update={"provider": "stability", "applied": ["seed"]})
    text = to_a1111_parameters(record)
    assert "Seed: 7" in text
    for absent in ("Negative prompt", "Steps:", "CFG scale"):
        assert absent not in text
    assert record.took_effect("seed")
    assert not record.took_effect("steps")
    assert record.took_effect("prompt")
    assert parse_a1111_parameters(text)["Model"] == "sd-turbo"
    assert make_record().took_effect("steps")  # a local run used everything


def test_a_character_image_names_its_adapter_and_references() -> None:
    record = make_record().model_copy(update={"ip_adapter": "h94/IP-Adapter", "character": "applebot"})
    fields = parse_a1111_parameters(to_a1111_parameters(record))
    assert fields["IP-Adapter"] == "h94/IP-Adapter"
    assert fields["Character"] == "applebot"
