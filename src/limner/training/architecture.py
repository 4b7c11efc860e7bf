"""The limner-tiny component configs: a Stable-Diffusion-shaped model small enough for 2 CPU cores.

Why these sizes (64px emoji, trained from scratch on a CPU in about an hour):

- VAE: three blocks, so the latent scale factor is 4 (64px -> 16x16x4 latents, 4 channels as the
  inpaint pipeline requires). No mid-block attention: the autoencoder is fully convolutional, so it
  can train on random crops (4x cheaper per image) and still be exact on whole images.
- UNet: 16x16 latents, channels (32, 64, 128). The 16x16 level has no attention (cheap); text
  cross-attention sits at 8x8 and 4x4, where one emoji's whole layout is a handful of tokens.
- Text encoder: a small CLIP text transformer trained jointly from scratch over a trimmed CLIP BPE
  vocab; 32 positions cover every caption (the longest is 24 tokens).
- Scheduler: the SD 1.x noise schedule, so every diffusers scheduler can be derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from diffusers.schedulers.scheduling_ddpm import DDPMScheduler
from diffusers.schedulers.scheduling_euler_discrete import EulerDiscreteScheduler
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

SD_SCHEDULE = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
}


@dataclass(frozen=True)
class TinyArchitecture:
    """Sizes of the three networks; the defaults are limner-tiny."""

    image_size: int = 64
    vae_channels: tuple[int, ...] = (32, 64, 64)
    vae_groups: int = 8
    unet_channels: tuple[int, ...] = (32, 64, 128)
    unet_heads: int = 4
    unet_groups: int = 16
    text_hidden: int = 128
    text_layers: int = 3
    text_heads: int = 4
    text_positions: int = 32

    @property
    def latent_size(self) -> int:
        return self.image_size // 2 ** (len(self.vae_channels) - 1)


def build_vae(arch: TinyArchitecture) -> AutoencoderKL:
    blocks = len(arch.vae_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=arch.vae_channels,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=arch.vae_groups,
        sample_size=arch.image_size,
        mid_block_add_attention=False,
    )


def build_unet(arch: TinyArchitecture) -> UNet2DConditionModel:
    levels = len(arch.unet_channels)
    down = ("DownBlock2D", *("CrossAttnDownBlock2D",) * (levels - 1))
    up = (*("CrossAttnUpBlock2D",) * (levels - 1), "UpBlock2D")
    return UNet2DConditionModel(
        sample_size=arch.latent_size,
        in_channels=4,
        out_channels=4,
        down_block_types=down,
        up_block_types=up,
        block_out_channels=arch.unet_channels,
        layers_per_block=1,
        cross_attention_dim=arch.text_hidden,
        attention_head_dim=arch.unet_heads,
        norm_num_groups=arch.unet_groups,
    )


def build_text_encoder(arch: TinyArchitecture, tokenizer: CLIPTokenizer) -> CLIPTextModel:
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=arch.text_hidden,
        intermediate_size=arch.text_hidden * 4,
        num_hidden_layers=arch.text_layers,
        num_attention_heads=arch.text_heads,
        max_position_embeddings=arch.text_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(config)


def training_noise_schedule() -> DDPMScheduler:
    """The forward (noising) process used in training."""
    return DDPMScheduler(**SD_SCHEDULE)


def inference_scheduler() -> EulerDiscreteScheduler:
    """The scheduler saved with the model; pipelines may swap in any other via ``from_config``."""
    return EulerDiscreteScheduler(**SD_SCHEDULE, steps_offset=1, timestep_spacing="leading")
