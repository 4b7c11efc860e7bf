"""Weighted and long prompts through compel on the tiny model (its tokenizer: one token a character)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from limner.core.errors import InvalidRequestError
from limner.core.progress import CancelToken
from limner.core.requests import GenerationRequest
from limner.engines.base import TaskInputs
from limner.engines.local.engine import LocalEngine
from limner.engines.local.prompt_embeds import PromptPair, _too_long, encode

LONG = ("a small red fox sitting in tall grass beside a quiet river under a pale morning sky, painted softly "
        "with warm colours, ")  # fmt: skip


def txt2img(**fields: object) -> GenerationRequest:
    base: dict[str, object] = {"prompt": "a red fox", "steps": 2, "seed": 7, "width": 32, "height": 32}
    base.update(fields)
    return GenerationRequest.model_validate(base)


def pixels(engine: LocalEngine, **fields: object) -> np.ndarray:
    return np.asarray(engine.run(txt2img(**fields)).images[0].image, dtype=np.int16)


def test_weight_one_equals_no_weight_and_a_weight_changes_the_embedding(engine: LocalEngine) -> None:
    pipeline = engine.model_slot().pipeline
    plain, _ = pipeline.encode_prompt("a red fox", "cpu", 1, False)
    one = encode(pipeline, PromptPair.parse("a (red:1.0) fox", ""))["prompt_embeds"]
    more = encode(pipeline, PromptPair.parse("a (red:1.5) fox", ""))["prompt_embeds"]
    assert one.shape == plain.shape == (1, 77, 32)
    assert torch.allclose(one, plain, atol=1e-5)  # compel's path agrees with the pipeline's own encoder
    changed = (more - plain).abs().amax(dim=-1)[0]
    assert changed[2:5].min() > 1e-3  # the tokens of "red" (after the start token and "a")
    assert changed[:2].max() < 1e-5  # tokens before the weighted word are untouched


def test_weighted_prompts_change_the_image_and_weight_one_does_not(engine: LocalEngine) -> None:
    plain = pixels(engine)
    assert np.array_equal(pixels(engine, prompt="a (red:1.0) fox"), plain)
    weighted = pixels(engine, prompt="a (red:1.6) fox")
    assert not np.array_equal(weighted, plain)
    assert not np.array_equal(pixels(engine, prompt="a [red] fox", negative_prompt="(blurry:1.3)"), plain)


def test_prompts_over_77_tokens_are_not_cut(engine: LocalEngine) -> None:
    pipeline = engine.model_slot().pipeline
    assert len(pipeline.tokenizer(LONG).input_ids) > 77
    embeds = encode(pipeline, PromptPair.parse(LONG + "at dawn", "blurry"))
    assert embeds["prompt_embeds"].shape == embeds["negative_prompt_embeds"].shape == (1, 154, 32)
    # The tail past token 77 reaches the image: two prompts that differ only there differ.
    dawn = pixels(engine, prompt=LONG + "at dawn, golden light")
    dusk = pixels(engine, prompt=LONG + "at night, cold blue light")
    assert not np.array_equal(dawn, dusk)


def test_the_record_keeps_the_prompt_as_written(engine: LocalEngine) -> None:
    record = engine.run(txt2img(prompt="a (red:1.4) fox", negative_prompt="[blurry]")).images[0].record
    assert record.request.prompt == "a (red:1.4) fox"
    assert record.request.negative_prompt == "[blurry]"


def test_bad_syntax_is_refused_before_any_model_loads(engine: LocalEngine) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        engine.validate(txt2img(prompt="a (red fox"), TaskInputs())
    assert caught.value.param == "prompt"
    with pytest.raises(InvalidRequestError) as negative:
        engine.validate(txt2img(negative_prompt="blurry)"), TaskInputs())
    assert negative.value.param == "negative_prompt"


def test_weighted_prompts_run_alone_and_long_ones_in_a_batch_equal_their_solo_runs(engine: LocalEngine) -> None:
    assert engine.batch_key(txt2img(prompt="a (red:1.2) fox")) is None
    assert engine.batch_key(txt2img(prompt="a \\(red\\) fox")) is None  # solo runs resolve the escapes
    requests = [txt2img(prompt=LONG + "at dawn"), txt2img(prompt="a blue boat", seed=3)]
    assert engine.batch_key(requests[0]) == engine.batch_key(requests[1]) is not None
    together = engine.run_together(requests, [lambda _: None] * 2, [CancelToken(), CancelToken()])
    for request, result in zip(requests, together, strict=True):
        assert not isinstance(result, Exception)
        alone = engine.run(request).images[0].image
        assert result.images[0].image.tobytes() == alone.tobytes()


def test_sdxl_gets_both_encoders_and_the_pooled_embedding(sdxl_engine: LocalEngine) -> None:
    pipeline = sdxl_engine.model_slot().pipeline
    with torch.inference_mode():
        plain, plain_negative, pooled, negative_pooled = pipeline.encode_prompt("a red fox")
    one = encode(pipeline, PromptPair.parse("a (red:1.0) fox", ""))
    assert one["prompt_embeds"].shape == plain.shape == (1, 77, 64)
    assert torch.allclose(one["prompt_embeds"], plain, atol=1e-5)
    assert torch.allclose(one["pooled_prompt_embeds"], pooled, atol=1e-5)
    assert torch.equal(one["negative_prompt_embeds"], plain_negative)  # zeros for an empty negative, as SDXL does
    assert torch.equal(one["negative_pooled_prompt_embeds"], negative_pooled)
    weighted = encode(pipeline, PromptPair.parse("a (red:1.5) fox", ""))["prompt_embeds"]
    assert not torch.allclose(weighted, plain, atol=1e-3)
    long = encode(pipeline, PromptPair.parse(LONG + "at dawn", "(blurry:1.2)"))
    assert long["prompt_embeds"].shape == long["negative_prompt_embeds"].shape == (1, 154, 64)


def test_weighted_and_long_prompts_run_on_sdxl(sdxl_engine: LocalEngine) -> None:
    engine = sdxl_engine
    plain = engine.run(txt2img(steps=1)).images[0]
    assert plain.record.pipeline == "StableDiffusionXLPipeline"
    weighted = engine.run(txt2img(steps=1, prompt="a (red:1.6) fox", negative_prompt="[blurry]")).images[0]
    assert weighted.image.tobytes() != plain.image.tobytes()
    long = engine.run(txt2img(steps=1, prompt=LONG + "at dawn")).images[0]
    assert long.image.size == (32, 32)


def test_a_short_ascii_prompt_is_judged_by_its_length_without_tokenizing(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each token of CLIP's byte-level BPE covers a byte or more: an ASCII prompt of at most the window less
    the start and end tokens cannot overflow it. Longer, non-ASCII or with added words: tokenized."""
    pipeline = engine.model_slot().pipeline
    tokenizer = pipeline.tokenizer
    window = tokenizer.model_max_length
    tokenize = type(tokenizer).__call__
    calls: list[str] = []

    def counted(self: object, text: str, *arguments: object, **options: object) -> object:
        calls.append(text)
        return tokenize(self, text, *arguments, **options)

    monkeypatch.setattr(type(tokenizer), "__call__", counted)
    generator = np.random.default_rng(0)
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789 ,.()!?-")
    for length in range(1, window - 1):  # the bound holds for any ASCII text, checked here on random ones
        text = "".join(generator.choice(letters, size=length))
        assert len(tokenize(tokenizer, text, truncation=False, add_special_tokens=True).input_ids) <= window
    assert _too_long(pipeline, "x" * (window - 2)) is False
    assert calls == []
    assert _too_long(pipeline, "x" * (window - 1)) is True  # tokenized: one char a token on this model
    assert _too_long(pipeline, "x " * (window // 2 + 1)) is False  # tokenized: spaces make no tokens
    assert _too_long(pipeline, "caf\u00e9") is False
    assert calls == ["x" * (window - 1), "x " * (window // 2 + 1), "caf\u00e9"]
