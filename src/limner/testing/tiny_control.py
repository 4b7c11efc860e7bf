"""Tiny, seeded ControlNet and T2I-Adapter for the tiny models of :mod:`limner.testing.tiny_models`.

Why random "zero convolutions": a ControlNet made with ``ControlNetModel.from_unet`` starts with its
output convolutions at zero (as in training), so it would change nothing and a test could not tell a
control that acts from one that is ignored. Here they are random and small, so the control image
visibly steers the output, and weight 0 must give back the uncontrolled pixels exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import ControlNetModel, T2IAdapter, UNet2DConditionModel


def build_tiny_controlnet(model_dir: Path, out_dir: Path, seed: int = 4) -> Path:
    """A ControlNet shaped after the UNet in ``model_dir/unet``, saved as a diffusers folder (safetensors)."""
    unet = UNet2DConditionModel.from_pretrained(str(Path(model_dir) / "unet"), use_safetensors=True)
    torch.manual_seed(seed)
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16, 32, 64))
    with torch.no_grad():
        for block in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            block.weight.normal_(0.0, 0.03)
            block.bias.zero_()
        for conv in controlnet.controlnet_cond_embedding.modules():
            if isinstance(conv, torch.nn.Conv2d):  # strong enough that the picture, not the bias, dominates
                conv.weight.normal_(0.0, 2.0 / (conv.in_channels * 9) ** 0.5)
    out_dir = Path(out_dir)
    controlnet.save_pretrained(str(out_dir), safe_serialization=True)
    return out_dir


def build_tiny_t2i_adapter(out_dir: Path, seed: int = 5) -> Path:
    """A T2I-Adapter whose features fit the tiny UNet (32 and 64 channels, at half the latent size)."""
    torch.manual_seed(seed)
    adapter = T2IAdapter(
        in_channels=3, channels=[32, 64], num_res_blocks=1, downscale_factor=16, adapter_type="full_adapter_xl"
    )
    out_dir = Path(out_dir)
    adapter.save_pretrained(str(out_dir), safe_serialization=True)  # type: ignore[attr-defined]
    return out_dir


def build_tiny_depth_estimator(out_dir: Path, seed: int = 6) -> Path:
    """A random DPT depth estimator (transformers, safetensors) with its image processor, for depth controls."""
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    torch.manual_seed(seed)
    config = DPTConfig(
        hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32, image_size=32, patch_size=8,
        neck_hidden_sizes=[8, 8, 8, 8], fusion_hidden_size=8, backbone_out_indices=[0, 1, 2, 3],
    )  # fmt: skip
    out_dir = Path(out_dir)
    DPTForDepthEstimation(config).save_pretrained(str(out_dir), safe_serialization=True)
    DPTImageProcessor(size={"height": 32, "width": 32}, keep_aspect_ratio=False).save_pretrained(str(out_dir))
    return out_dir


def build_tiny_sdxl_pipeline(save_dir: Path, seed: int = 7) -> Any:
    """A seeded tiny SDXL pipeline (two text encoders, text-time embeddings) saved as a diffusers folder,
    so the SDXL control pipelines (ControlNet txt2img/img2img/inpaint, T2I-Adapter) are tested offline."""
    from diffusers import StableDiffusionXLPipeline
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from limner.testing.tiny_models import byte_level_clip_tokenizer, sd_scheduler, tiny_vae

    save_dir = Path(save_dir)
    tokenizer = byte_level_clip_tokenizer(save_dir / "tokenizer")
    tokenizer_2 = byte_level_clip_tokenizer(save_dir / "tokenizer_2")
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 1), projection_class_embeddings_input_dim=80,
        cross_attention_dim=64, norm_num_groups=8,
    )  # fmt: skip
    text = CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id,
        hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, vocab_size=len(tokenizer),
        max_position_embeddings=77, projection_dim=32,
    )  # fmt: skip
    pipeline: Any = StableDiffusionXLPipeline(
        vae=tiny_vae(), text_encoder=CLIPTextModel(text), text_encoder_2=CLIPTextModelWithProjection(text),
        tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=unet, scheduler=sd_scheduler(),
    )  # fmt: skip
    pipeline.save_pretrained(str(save_dir), safe_serialization=True)
    return pipeline
