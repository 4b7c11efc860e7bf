"""Form values to job bodies and back ("reuse these settings"), sizes and LoRA lines."""

from __future__ import annotations

import pytest

from limner.ui.job_spec import (
    JobSpec,
    Lora,
    format_loras,
    parse_lines,
    parse_loras,
    parse_size,
    spec_from_parameters,
    task_for_inputs,
)


def test_body_sends_only_what_was_set() -> None:
    assert JobSpec(prompt="a fox").body() == {"task": "txt2img", "prompt": "a fox", "preview": True}
    assert "preview" not in JobSpec(prompt="a fox", preview=False).body()
    body = JobSpec(prompt="a fox", seed=0, guidance_scale=0.0, loras=(Lora("x.safetensors", 0.5),)).body()
    assert body["seed"] == 0
    assert body["guidance_scale"] == 0.0
    assert body["loras"] == [{"ref": "x.safetensors", "weight": 0.5}]
    assert JobSpec(task="character", extra={"character": "momo"}).body()["character"] == "momo"


@pytest.mark.parametrize(
    ("text", "expected"), [("", None), ("512x768", (512, 768)), ("512", (512, 512)), (" 64 × 64 ", (64, 64))]
)
def test_parse_size(text: str, expected: tuple[int, int] | None) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["big", "1x2x3", "axb"])
def test_parse_size_refuses_with_a_hint(text: str) -> None:
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_size(text)


def test_lora_lines_round_trip() -> None:
    loras = parse_loras("owner/repo/style.safetensors:0.7\n\nC:/loras/a.safetensors\nplain")
    assert loras == (Lora("owner/repo/style.safetensors", 0.7), Lora("C:/loras/a.safetensors"), Lora("plain"))
    assert parse_loras(format_loras(loras)) == loras


def test_embeddings_and_combinatorial_reach_the_body_and_come_back() -> None:
    body = JobSpec(prompt="a {red|blue} fox", embeddings=("owner/emb",), combinatorial=True).body()
    assert body["embeddings"] == ["owner/emb"]
    assert body["combinatorial"] is True
    assert {"embeddings", "combinatorial"}.isdisjoint(JobSpec(prompt="x").body())
    spec = spec_from_parameters({"request": {"prompt": "a red fox", "embeddings": ["owner/emb"]}})
    assert spec.embeddings == ("owner/emb",)
    assert parse_lines(" owner/a \n\n owner/b ") == ("owner/a", "owner/b")


def test_task_follows_the_inputs() -> None:
    assert task_for_inputs(False, False) == "txt2img"
    assert task_for_inputs(True, False) == "img2img"
    assert task_for_inputs(True, True) == "inpaint"


def test_spec_from_parameters_reproduces_one_image() -> None:
    parameters = {
        "request": {
            "task": "txt2img",
            "prompt": "p",
            "negative_prompt": "n",
            "model": "m",
            "steps": 9,
            "guidance_scale": 4.5,
            "seed": 10,
            "num_images": 4,
            "scheduler": "ddim",
            "loras": [{"ref": "l", "weight": 0.3}],
            "init_image": None,
        },
        "seed": 12,
        "width": 64,
        "height": 96,
    }
    spec = spec_from_parameters(parameters)
    assert spec == JobSpec(
        task="txt2img",
        prompt="p",
        negative_prompt="n",
        model="m",
        width=64,
        height=96,
        steps=9,
        guidance_scale=4.5,
        seed=12,
        num_images=1,
        scheduler="ddim",
        loras=(Lora("l", 0.3),),
        strength=None,
    )
    assert spec_from_parameters(parameters, keep_seed=False).seed is None
    assert spec_from_parameters({"a1111": {}}).prompt == ""
