"""Latent centring: exact (decode(encode(x)) unchanged), and it leaves each channel at mean 0, std 1."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL

from limner.training.architecture import TinyArchitecture, build_vae
from limner.training.autoencoder import centre_latents, encode_latents


def _images(n: int, size: int) -> torch.Tensor:
    return (torch.rand(n, size, size, 3, generator=torch.Generator().manual_seed(3)) * 255).to(torch.uint8)


def test_centring_is_exact_and_normalises_each_channel(tiny_arch: TinyArchitecture) -> None:
    torch.manual_seed(0)
    vae = build_vae(tiny_arch).eval()
    images = _images(12, tiny_arch.image_size)
    pixels = images.permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.no_grad():
        before = vae.decode(vae.encode(pixels).latent_dist.mode()).sample
        std_before = vae.encode(pixels).latent_dist.std

    shift, scale = centre_latents(vae, images)

    means, stds = encode_latents(vae, images)
    assert torch.allclose(means.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-4)
    assert torch.allclose(means.std(dim=(0, 2, 3)), torch.ones(4), atol=1e-4)
    assert torch.allclose(stds, std_before / scale.view(1, -1, 1, 1), rtol=1e-3)
    with torch.no_grad():
        after = vae.decode(vae.encode(pixels).latent_dist.mode()).sample
    assert torch.allclose(before, after, atol=1e-4)
    assert vae.config["scaling_factor"] == 1.0
    assert not torch.allclose(shift, torch.zeros(4))


def test_centred_vae_round_trips_through_save_and_load(tiny_arch: TinyArchitecture, tmp_path: Path) -> None:
    torch.manual_seed(0)
    vae = build_vae(tiny_arch).eval()
    images = _images(6, tiny_arch.image_size)
    centre_latents(vae, images)
    folder = tmp_path / "vae"
    vae.save_pretrained(str(folder), safe_serialization=True)
    loaded = AutoencoderKL.from_pretrained(str(folder)).eval()
    assert torch.allclose(encode_latents(loaded, images)[0], encode_latents(vae, images)[0], atol=1e-6)
