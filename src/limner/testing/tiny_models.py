"""Tiny, seeded Stable-Diffusion-shaped models built from configs, with no download.

Why: no model hub is reachable from CI or from air-gapped machines, yet the engine must be tested
through its real loading path. Like diffusers' own ``get_dummy_components()``, these builders make
random-weight components small enough for a CPU test, save them as a normal diffusers folder, and
the tests then load that folder exactly as a user's model would be loaded.

The VAE has four blocks, so its latent scale factor is 8 as in real SD. The tokenizer is a
byte-level CLIP BPE with no merges (514 tokens): it tokenizes any text without a vocab download.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    StableDiffusionInpaintPipeline,
    StableDiffusionInstructPix2PixPipeline,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from tokenizers import pre_tokenizers
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
TEXT_HIDDEN_SIZE = 32


class TinyKind(StrEnum):
    """Which UNet input layout to build: plain SD, SD-inpainting (9 ch) or InstructPix2Pix (8 ch)."""

    TXT2IMG = "txt2img"
    INPAINT = "inpaint"
    EDIT = "edit"


_IN_CHANNELS = {TinyKind.TXT2IMG: 4, TinyKind.INPAINT: 9, TinyKind.EDIT: 8}
_PIPELINES = {
    TinyKind.TXT2IMG: StableDiffusionPipeline,
    TinyKind.INPAINT: StableDiffusionInpaintPipeline,
    TinyKind.EDIT: StableDiffusionInstructPix2PixPipeline,
}


def byte_level_clip_tokenizer(save_dir: Path) -> CLIPTokenizer:
    """Write and load a CLIP tokenizer whose vocab is the 256 byte symbols (plain and word-final)."""
    save_dir.mkdir(parents=True, exist_ok=True)
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for symbol in alphabet:
        vocab[symbol] = len(vocab)
    for symbol in alphabet:
        vocab[symbol + "</w>"] = len(vocab)
    vocab[BOS_TOKEN] = len(vocab)
    vocab[EOS_TOKEN] = len(vocab)
    (save_dir / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (save_dir / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    tokenizer.save_pretrained(str(save_dir))
    return tokenizer


def tiny_unet(in_channels: int = 4) -> UNet2DConditionModel:
    return UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_HIDDEN_SIZE,
        attention_head_dim=8,
        norm_num_groups=8,
    )


def tiny_vae() -> AutoencoderKL:
    return AutoencoderKL(
        block_out_channels=(8, 16, 16, 16),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        norm_num_groups=8,
        layers_per_block=1,
        sample_size=64,
    )


def tiny_text_encoder(vocab_size: int, bos_id: int, eos_id: int) -> CLIPTextModel:
    config = CLIPTextConfig(
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
        hidden_size=TEXT_HIDDEN_SIZE,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=vocab_size,
        max_position_embeddings=77,
    )
    return CLIPTextModel(config)


def sd_scheduler() -> EulerDiscreteScheduler:
    """The noise schedule of SD 1.x, so every scheduler by name can be derived from it."""
    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
        timestep_spacing="leading",
        prediction_type="epsilon",
    )


def build_tiny_pipeline(save_dir: Path, kind: TinyKind = TinyKind.TXT2IMG, seed: int = 0) -> Any:
    """Build a seeded tiny pipeline of ``kind`` and save it as a diffusers folder (safetensors)."""
    save_dir = Path(save_dir)
    tokenizer = byte_level_clip_tokenizer(save_dir / "tokenizer")
    torch.manual_seed(seed)
    unet = tiny_unet(_IN_CHANNELS[kind])
    vae = tiny_vae()
    text_encoder = tiny_text_encoder(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id)
    pipeline_class: Any = _PIPELINES[kind]
    pipeline = pipeline_class(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=sd_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(str(save_dir), safe_serialization=True)
    return pipeline


def build_tiny_lora(model_dir: Path, out_file: Path, rank: int = 4, seed: int = 1) -> Path:
    """Write a random LoRA (safetensors) for the UNet attention of the tiny model in ``model_dir``.

    ``init_lora_weights=False`` makes both LoRA matrices random, so the adapter visibly changes
    the output, which is what a test of "LoRA on changes the image, off restores it" needs.
    """
    from peft import LoraConfig, get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(str(Path(model_dir) / "unet"), use_safetensors=True)
    torch.manual_seed(seed)
    unet.add_adapter(
        LoraConfig(
            r=rank,
            lora_alpha=rank,
            init_lora_weights=False,
            target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        )
    )
    layers = get_peft_model_state_dict(unet)
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(
        str(out_file.parent), unet_lora_layers=layers, weight_name=out_file.name, safe_serialization=True
    )
    return out_file


IP_ADAPTER_TOKENS = 4
IMAGE_EMBED_DIM = 16


def build_tiny_ip_adapter(model_dir: Path, out_dir: Path, seed: int = 2) -> Path:
    """Write a random IP-Adapter for the tiny model: ``out_dir/ip-adapter.safetensors`` plus an
    ``image_encoder/`` folder (a small CLIPVisionModelWithProjection), the layout of h94/IP-Adapter.

    The adapter holds ``image_proj.proj`` / ``image_proj.norm`` and, for every cross-attention
    processor of the UNet (odd indices in ``attn_processors`` order), ``to_k_ip`` / ``to_v_ip``.
    """
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            image_size=32,
            patch_size=8,
            projection_dim=IMAGE_EMBED_DIM,
        )
    )
    encoder.save_pretrained(str(out_dir / "image_encoder"), safe_serialization=True)
    unet = UNet2DConditionModel.from_pretrained(str(Path(model_dir) / "unet"), use_safetensors=True)
    cross_dim = int(unet.config.cross_attention_dim)
    tensors: dict[str, torch.Tensor] = {
        "image_proj.proj.weight": torch.randn(cross_dim * IP_ADAPTER_TOKENS, IMAGE_EMBED_DIM) * 0.3,
        "image_proj.proj.bias": torch.zeros(cross_dim * IP_ADAPTER_TOKENS),
        "image_proj.norm.weight": torch.ones(cross_dim),
        "image_proj.norm.bias": torch.zeros(cross_dim),
    }
    for index, name in enumerate(unet.attn_processors):
        if name.endswith("attn2.processor"):
            hidden = _attention_width(unet, name)
            tensors[f"ip_adapter.{index}.to_k_ip.weight"] = torch.randn(hidden, cross_dim) * 0.3
            tensors[f"ip_adapter.{index}.to_v_ip.weight"] = torch.randn(hidden, cross_dim) * 0.3
    weights = out_dir / "ip-adapter.safetensors"
    save_file(tensors, str(weights))
    return weights


def _attention_width(unet: UNet2DConditionModel, processor_name: str) -> int:
    module: Any = unet
    for part in processor_name.removesuffix(".processor").split("."):
        module = getattr(module, part) if not part.isdigit() else module[int(part)]
    return int(module.to_q.out_features)


def build_tiny_taesd(out_dir: Path, seed: int = 3) -> Path:
    """A tiny random ``AutoencoderTiny`` in the latent space of :func:`tiny_vae` (4 channels, 8x), saved as a folder."""
    from diffusers import AutoencoderTiny

    torch.manual_seed(seed)
    tiny = AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
    )
    tiny.save_pretrained(out_dir, safe_serialization=True)  # type: ignore[attr-defined]
    return out_dir


def build_tiny_upscaler(out_file: Path, kind: str = "esrgan", scale: int = 2, seed: int = 4) -> Path:
    """A tiny random ESRGAN-family upscaler saved as a ``.safetensors`` state dict, as users get them.

    ``esrgan``: spandrel's RRDBNet (ESRGAN / Real-ESRGAN) with 8 filters and one block; ``compact``:
    Real-ESRGAN's SRVGGNetCompact with 4 features and one conv (cheap enough for 2048 px pictures).
    spandrel reads the architecture and scale back from the keys, as for a downloaded model.
    """
    from safetensors.torch import save_file

    from limner.engines.local.spandrel_import import import_spandrel

    import_spandrel()
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(seed)
    model: torch.nn.Module
    if kind == "esrgan":
        model = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=scale)
    elif kind == "compact":
        model = Compact(num_feat=4, num_conv=1, upscale=scale)
    else:
        raise ValueError(f"unknown tiny upscaler kind {kind!r} (esrgan or compact)")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    save_file({name: tensor.contiguous() for name, tensor in model.state_dict().items()}, str(out_file))
    return out_file


def build_tiny_x4_upscaler(save_dir: Path, seed: int = 5) -> Path:
    """A tiny random ``StableDiffusionUpscalePipeline`` (the SD x4 upscaler's layout) saved as a diffusers folder.

    Its UNet reads 7 channels (4 latent + the 3-channel low-resolution picture) and embeds the noise level
    as a class; its VAE has three blocks, so its latents are 4x smaller than the picture, as in the real one.
    """
    from diffusers import DDIMScheduler, DDPMScheduler, StableDiffusionUpscalePipeline

    save_dir = Path(save_dir)
    tokenizer = byte_level_clip_tokenizer(save_dir / "tokenizer")
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,
        in_channels=7,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_HIDDEN_SIZE,
        attention_head_dim=8,
        norm_num_groups=8,
        num_class_embeds=400,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 16, 16),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        latent_channels=4,
        norm_num_groups=8,
        layers_per_block=1,
        scaling_factor=0.08333,
    )
    text_encoder = tiny_text_encoder(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id)
    pipeline = StableDiffusionUpscalePipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        low_res_scheduler=DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear"),
        scheduler=DDIMScheduler(beta_schedule="scaled_linear", prediction_type="v_prediction"),
        max_noise_level=350,
    )
    pipeline.save_pretrained(str(save_dir), safe_serialization=True)  # type: ignore[attr-defined]
    return save_dir
