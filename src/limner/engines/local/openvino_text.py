"""A CLIP text encoder on OpenVINO, standing in for ``CLIPTextModel`` / ``CLIPTextModelWithProjection``.

Why every output at once: diffusers' pipelines and compel read different things from the encoder's
output (SD: ``[0]``, the last hidden state; ``clip_skip`` and SDXL: ``hidden_states[-2]`` and
beyond; SDXL's second encoder: ``[0]``, the projected ``text_embeds``; compel: ``last_hidden_state``,
``pooler_output``). The converted graph returns the last hidden state, the pooled output and every
hidden state; this module answers with the output class the PyTorch encoder would return, so callers
read it as before. One compiled model per token count (pipelines and compel always pad to the
tokenizer's window, so one count per model); the batch size stays free.

What stays on PyTorch: a call with a real padding mask (a zero in ``attention_mask``), and anything
that reads submodules (``final_layer_norm`` for ``clip_skip``), which reach the original's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from limner.engines.local.openvino_unet import StandIn


def supports_text_encoder(encoder: Any) -> bool:
    """A transformers CLIP text encoder (with or without projection), the text encoders of SD 1.x/2.x and SDXL."""
    return type(encoder).__name__ in ("CLIPTextModel", "CLIPTextModelWithProjection")


class OpenVinoTextEncoder(StandIn):
    """Stands in for a CLIP text encoder; any other attribute (``final_layer_norm``, ``text_model`` on
    older transformers, ``get_input_embeddings``) is the original's."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "_original" or "_original" not in self.__dict__:
                raise
            return getattr(self.__dict__["_original"][0], name)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **unused: Any,
    ) -> Any:
        masked = attention_mask is not None and not bool(torch.all(attention_mask != 0))
        if masked or position_ids is not None or output_attentions or unused:
            return self._original[0](input_ids, attention_mask=attention_mask, position_ids=position_ids,
                                     output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                                     return_dict=return_dict, **unused)  # fmt: skip
        compiled = self._compiled((int(input_ids.shape[-1]),), "text-encoder")
        result = compiled([input_ids.to(torch.int64).numpy(), *self._lora_inputs()])
        tensors = [torch.from_numpy(np.asarray(result[index])) for index in range(len(compiled.outputs))]
        last, pooled, hidden = tensors[0], tensors[1], tuple(tensors[2:]) if output_hidden_states else None
        if hasattr(self._original[0], "text_projection"):
            from transformers.models.clip.modeling_clip import CLIPTextModelOutput

            output: Any = CLIPTextModelOutput(text_embeds=pooled, last_hidden_state=last, hidden_states=hidden)
        else:
            from transformers.modeling_outputs import BaseModelOutputWithPooling

            output = BaseModelOutputWithPooling(last_hidden_state=last, pooler_output=pooled, hidden_states=hidden)
        return output if return_dict is not False else output.to_tuple()
