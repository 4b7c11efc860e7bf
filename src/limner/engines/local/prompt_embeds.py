"""Weighted and long prompts, encoded by compel into the embeddings a pipeline takes instead of text.

Why only when needed: a plain prompt (no weights, at most 77 tokens) goes to the pipeline as text,
exactly as before, so its pixels do not change. A prompt with A1111 weights (``(word:1.3)``) or
longer than the text encoder's window is read by :mod:`limner.prompts.weighting` into weighted
fragments and encoded by compel: weights scale each token's embedding, and a long prompt is split
into 77-token chunks encoded one by one and concatenated (compel's ``truncate_long_prompts=False``),
so nothing past token 77 is cut. The negative prompt is padded to the same length.

Stable Diffusion 1.x/2.x (one CLIP text encoder) and SDXL (two, plus the pooled embedding of the
second) are supported; other families refuse weights with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from limner.core.errors import InvalidRequestError
from limner.prompts.weighting import Fragment, is_weighted, parse_weighted, plain_text


@dataclass(frozen=True)
class PromptPair:
    """A request's prompt and negative prompt, read as weighted fragments."""

    prompt: list[Fragment]
    negative: list[Fragment]

    @classmethod
    def parse(cls, prompt: str, negative: str) -> PromptPair:
        """Read both; bad syntax raises :class:`InvalidRequestError` naming the field."""
        return cls(parse_weighted(prompt, "prompt"), parse_weighted(negative, "negative_prompt"))

    @property
    def weighted(self) -> bool:
        return is_weighted(self.prompt) or is_weighted(self.negative)

    @property
    def plain(self) -> tuple[str, str]:
        """Prompt and negative prompt as plain text (escapes resolved, weights dropped)."""
        return plain_text(self.prompt), plain_text(self.negative)


def supports_embeds(pipeline: Any) -> bool:
    """Whether ``pipeline`` is of the CLIP-conditioned Stable Diffusion family compel encodes for."""
    name = type(pipeline).__name__
    return name.startswith("StableDiffusion") and not name.startswith("StableDiffusion3")


def needs_embeds(pipeline: Any, pair: PromptPair) -> bool:
    """True when the prompt pair must be encoded here: weighted, or longer than the encoder's window."""
    if pair.weighted:
        return True
    if not supports_embeds(pipeline):
        return False
    return any(_too_long(pipeline, plain_text(fragments)) for fragments in (pair.prompt, pair.negative))


def with_prompt_embeds(pipeline: Any, pair: PromptPair, arguments: dict[str, Any], model_name: str) -> dict[str, Any]:
    """``arguments`` with the text prompts replaced by compel's embeddings (when :func:`needs_embeds`),
    else by their plain text (escapes resolved, brackets of weight 1 dropped: ``(red:1.0)`` is ``red``)."""
    if not needs_embeds(pipeline, pair):
        if "prompt" not in arguments or isinstance(arguments["prompt"], list):
            return arguments
        negative = plain_text(pair.negative)
        return {**arguments, "prompt": plain_text(pair.prompt), "negative_prompt": negative or None}
    if not supports_embeds(pipeline) or "prompt" not in arguments:
        raise InvalidRequestError(
            f"prompt weights work on Stable Diffusion 1.x/2.x and SDXL models; {model_name} runs a "
            f"{type(pipeline).__name__}: remove the weights (or write \\( for a bracket)",
            param="prompt",
        )
    embeds = encode(pipeline, pair)
    updated = {key: value for key, value in arguments.items() if key not in ("prompt", "negative_prompt")}
    updated.update(embeds)
    return updated


def encode(pipeline: Any, pair: PromptPair) -> dict[str, torch.Tensor]:
    """``prompt_embeds`` and ``negative_prompt_embeds`` (+ the pooled pair on SDXL), padded to one length."""
    from compel import Compel, ReturnedEmbeddingsType

    sdxl = getattr(pipeline, "text_encoder_2", None) is not None
    kind = (
        ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED
        if sdxl
        else ReturnedEmbeddingsType.LAST_HIDDEN_STATES_NORMALIZED
    )
    encoders = [
        (getattr(pipeline, tokenizer), getattr(pipeline, encoder))
        for tokenizer, encoder in (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2"))
        if getattr(pipeline, encoder, None) is not None
    ]
    manager = _inversion_manager(pipeline)
    halves: list[list[torch.Tensor]] = []
    pooled: list[torch.Tensor] = []
    with torch.inference_mode():
        for index, (tokenizer, text_encoder) in enumerate(encoders):
            last = index == len(encoders) - 1
            compel = Compel(
                tokenizer=tokenizer, text_encoder=text_encoder, textual_inversion_manager=manager,
                dtype_for_device_getter=lambda _device, dtype=text_encoder.dtype: dtype,
                truncate_long_prompts=False, returned_embeddings_type=kind, requires_pooled=sdxl and last,
                device=str(text_encoder.device),
            )  # fmt: skip
            positive = _conditioning(compel, pair.prompt)
            negative = _conditioning(compel, pair.negative)
            halves.append(compel.pad_conditioning_tensors_to_same_length([positive, negative]))
            if sdxl and last:
                provider = compel.conditioning_provider
                texts = (plain_text(pair.prompt), plain_text(pair.negative))
                pooled = [provider.get_pooled_embeddings([text]) for text in texts]
        length = max(tensor.shape[1] for pair_ in halves for tensor in pair_)
        halves = [[_pad(tensor, length) for tensor in pair_] for pair_ in halves]
        prompt_embeds = torch.cat([pair_[0] for pair_ in halves], dim=-1)
        negative_embeds = torch.cat([pair_[1] for pair_ in halves], dim=-1)
        result = {"prompt_embeds": prompt_embeds, "negative_prompt_embeds": negative_embeds}
        if sdxl:
            negative_pooled = pooled[1]
            if not plain_text(pair.negative) and getattr(pipeline.config, "force_zeros_for_empty_prompt", False):
                # What the SDXL pipeline itself does for an empty negative prompt.
                negative_embeds = torch.zeros_like(negative_embeds)
                negative_pooled = torch.zeros_like(negative_pooled)
            result.update(negative_prompt_embeds=negative_embeds, pooled_prompt_embeds=pooled[0],
                          negative_pooled_prompt_embeds=negative_pooled)  # fmt: skip
    return result


def _conditioning(compel: Any, fragments: list[Fragment]) -> torch.Tensor:
    from compel.prompt_parser import Conjunction, FlattenedPrompt
    from compel.prompt_parser import Fragment as CompelFragment

    parts = [CompelFragment(fragment.text, fragment.weight) for fragment in fragments] or [CompelFragment("")]
    conditioning, _ = compel.build_conditioning_tensor_for_conjunction(Conjunction([FlattenedPrompt(parts)]))
    return conditioning


def _pad(tensor: torch.Tensor, length: int) -> torch.Tensor:
    """Chunks of two text encoders cover the same tokens; a shorter one (a tokenizer quirk) is padded."""
    if tensor.shape[1] >= length:
        return tensor
    padding = tensor[:, -1:, :].expand(-1, length - tensor.shape[1], -1)
    return torch.cat([tensor, padding], dim=1)


def _inversion_manager(pipeline: Any) -> Any:
    """Expands multi-vector textual-inversion words when the pipeline has any loaded."""
    from compel import DiffusersTextualInversionManager

    tokenizer = getattr(pipeline, "tokenizer", None)
    if tokenizer is None or not hasattr(pipeline, "maybe_convert_prompt"):
        return None
    has_added = any(not token.special for token in tokenizer.added_tokens_decoder.values())
    return DiffusersTextualInversionManager(pipeline) if has_added else None


def _too_long(pipeline: Any, text: str) -> bool:
    tokenizer = getattr(pipeline, "tokenizer", None) or getattr(pipeline, "tokenizer_2", None)
    if tokenizer is None or not text or _fits_by_its_length(tokenizer, text):
        return False
    if hasattr(pipeline, "maybe_convert_prompt"):
        text = pipeline.maybe_convert_prompt(text, tokenizer)
    ids = tokenizer(text, truncation=False, add_special_tokens=True).input_ids
    return len(ids) > tokenizer.model_max_length


CLIP_TOKENIZERS = frozenset({"CLIPTokenizer", "CLIPTokenizerFast"})


def _fits_by_its_length(tokenizer: Any, text: str) -> bool:
    """True when ``text`` fits the encoder's window by its length alone, without tokenizing it.

    CLIP's byte-level BPE gives every token at least one byte of the text (spaces give none), so an
    ASCII text of at most the window less two characters fits beside the start and end tokens. A
    tokenizer with added words is not judged this way: a textual-inversion word may stand for several
    tokens. Why: the check runs on every job, and tokenizing took 0.07 ms (0.3 ms on caches cooled by
    the model's compute), twice per job, for prompts that are mostly short.
    """
    return (
        type(tokenizer).__name__ in CLIP_TOKENIZERS
        and text.isascii()
        and len(text) <= tokenizer.model_max_length - 2
        and len(tokenizer) == tokenizer.vocab_size
    )
