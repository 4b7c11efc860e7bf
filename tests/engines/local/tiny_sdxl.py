"""A tiny SDXL pipeline from configs (two CLIP text encoders, the second with a projection), for prompt tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from limner.testing.tiny_models import byte_level_clip_tokenizer, sd_scheduler, tiny_vae


def build_tiny_sdxl(folder: Path, seed: int = 0) -> Any:
    """Build and save (safetensors) an SDXL-shaped pipeline; loading ``folder`` gives a StableDiffusionXLPipeline."""
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = byte_level_clip_tokenizer(folder / "tokenizer")
    tokenizer_2 = byte_level_clip_tokenizer(folder / "tokenizer_2")
    torch.manual_seed(seed)
    config = CLIPTextConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                            pad_token_id=tokenizer.eos_token_id, hidden_size=32, intermediate_size=37,
                            num_attention_heads=4, num_hidden_layers=2, vocab_size=len(tokenizer),
                            max_position_embeddings=77, projection_dim=32)  # fmt: skip
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 32, cross_attention_dim=64,
        norm_num_groups=8,
    )  # fmt: skip
    pipeline = StableDiffusionXLPipeline(
        vae=tiny_vae(), text_encoder=CLIPTextModel(config), text_encoder_2=CLIPTextModelWithProjection(config),
        tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=unet, scheduler=sd_scheduler(),
    )  # fmt: skip
    pipeline.save_pretrained(str(folder), safe_serialization=True)
    return pipeline
