"""Tiny random checkpoints in the original single-file (LDM / SGM) key layout, with their configs.

Why: an AUTOMATIC1111 user's ``.safetensors`` stores the UNet under ``model.diffusion_model.``, the
VAE under ``first_stage_model.`` and the text encoders as OpenAI CLIP (``cond_stage_model.transformer.``,
``conditioner.embedders.0.transformer.``) or OpenCLIP (``cond_stage_model.model.``,
``conditioner.embedders.1.model.``, fused ``in_proj`` attention). Real shapes are gigabytes, so these
writers build tiny seeded diffusers/transformers models, rename their weights into that layout (the
inverse of diffusers' own converters) and save the tiny configs as a family folder, which a test
passes to the loader as its single-file config root. The keys diffusers uses to tell the family
apart are kept: SD 2.x has a 1024-wide cross-attention in ``input_blocks.2.1`` and SDXL's second
encoder has at least ten ``resblocks``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, PreTrainedModel

from limner.engines.local.single_file_configs import shipped_config_root
from limner.testing.tiny_models import byte_level_clip_tokenizer, tiny_vae

TINY_SINGLE_FILE_FAMILIES = (
    "sd15",
    "sd2-512",
    "sd2-768-v",
    "sdxl-base",
    "sd15-inpainting",
    "sd2-inpainting",
    "sdxl-inpainting",
    "sd-turbo",
    "sdxl-turbo",
)
_SD2_WIDTH = 1024  # diffusers reads SD 2.x from a 1024-wide cross-attention; the tiny one keeps it
_SDXL_TIME_WIDTH = 8


def write_tiny_single_file(
    family: str, out_file: Path, config_root: Path, seed: int = 0, metadata: Mapping[str, str] | None = None
) -> dict[str, torch.nn.Module]:
    """Write a tiny ``family`` checkpoint to ``out_file`` and its configs to ``config_root/family``.

    Returns the source modules (``unet``, ``vae``, ``text_encoder``, ``text_encoder_2``) so a test can
    check that loading put every weight where it belongs.
    """
    if family not in TINY_SINGLE_FILE_FAMILIES:
        raise ValueError(f"no tiny layout for {family!r}; choose from {TINY_SINGLE_FILE_FAMILIES}")
    folder = Path(config_root) / family
    folder.mkdir(parents=True, exist_ok=True)
    index = json.loads((shipped_config_root() / family / "model_index.json").read_text(encoding="utf-8"))
    (folder / "model_index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")
    tokenizer = byte_level_clip_tokenizer(folder / "tokenizer")
    if "tokenizer_2" in index:
        byte_level_clip_tokenizer(folder / "tokenizer_2")
    torch.manual_seed(seed)
    xl = family.startswith("sdxl")
    modules: dict[str, Any] = {"vae": tiny_vae()}
    text_args = (len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id)
    if xl:
        modules["text_encoder"] = _clip(CLIPTextModel, 32, 2, *text_args)
        # widths differ as in SDXL (768, 1280): diffusers tells the two encoders apart by width
        modules["text_encoder_2"] = _clip(CLIPTextModelWithProjection, 48, 10, *text_args)
        modules["unet"] = _tiny_unet(family, cross_attention_dim=32 + 48, pooled_width=32)
    elif family.startswith("sd15"):
        modules["text_encoder"] = _clip(CLIPTextModel, 32, 2, *text_args)
        modules["unet"] = _tiny_unet(family, cross_attention_dim=32)
    else:
        modules["text_encoder"] = _clip(CLIPTextModel, _SD2_WIDTH, 1, *text_args)
        modules["unet"] = _tiny_unet(family, cross_attention_dim=_SD2_WIDTH)
    tensors = ldm_layout(family, modules)
    for name, module in modules.items():
        if isinstance(module, PreTrainedModel):
            module.config.save_pretrained(str(folder / name))
        else:
            module.save_config(str(folder / name))  # diffusers ConfigMixin
    (folder / "scheduler").mkdir(exist_ok=True)
    scheduler = shipped_config_root() / family / "scheduler" / "scheduler_config.json"
    (folder / "scheduler" / "scheduler_config.json").write_bytes(scheduler.read_bytes())
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in tensors.items()}, str(out_file), metadata=dict(metadata or {}))
    return modules


def go_offline(monkeypatch: Any, hf_home: Path) -> None:
    """No hub for the rest of a test: offline mode, an empty ``hf_home`` as the cache, sockets that refuse
    to connect (``monkeypatch``: pytest's fixture, so everything is undone after the test)."""
    import socket

    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf_home / "hub"))

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("network access in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def write_refiner_header(path: Path) -> Path:
    """A file with only the names diffusers tells an SDXL refiner by (no real weights): reading its
    header says "refiner", loading it would fail. For checks that must run before any weight loads."""
    save_file(
        {
            "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(8, 4, 3, 3),
            "conditioner.embedders.0.model.transformer.resblocks.9.mlp.c_proj.bias": torch.zeros(8),
        },
        str(path),
    )
    return path


def ldm_layout(family: str, modules: Mapping[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """The modules' weights under the original single-file names of ``family`` (meta tensors work too).

    ``modules``: ``unet``, ``vae`` and the family's text encoders, in diffusers/transformers form.
    """
    unet: Any = modules["unet"]
    tensors = _prefixed(_unet_to_ldm(unet.state_dict(), unet.config), "model.diffusion_model.")
    tensors |= _prefixed(_vae_to_ldm(modules["vae"].state_dict()), "first_stage_model.")
    if family == "sdxl-refiner":
        tensors |= _prefixed(_openclip_to_ldm(modules["text_encoder_2"].state_dict()), "conditioner.embedders.0.model.")
    elif family.startswith("sdxl"):
        tensors |= _prefixed(_clip_to_ldm(modules["text_encoder"].state_dict()), "conditioner.embedders.0.transformer.")
        tensors |= _prefixed(_openclip_to_ldm(modules["text_encoder_2"].state_dict()), "conditioner.embedders.1.model.")
    elif family.startswith("sd15"):
        tensors |= _prefixed(_clip_to_ldm(modules["text_encoder"].state_dict()), "cond_stage_model.transformer.")
    else:
        tensors |= _prefixed(_openclip_to_ldm(modules["text_encoder"].state_dict()), "cond_stage_model.model.")
    return tensors


def _clip(
    model_class: Callable[[CLIPTextConfig], torch.nn.Module], width: int, layers: int, vocab: int, bos: int, eos: int
) -> torch.nn.Module:
    config = CLIPTextConfig(
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=eos,
        hidden_size=width,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=layers,
        vocab_size=vocab,
        max_position_embeddings=77,
        projection_dim=32,
    )
    return model_class(config)


def _tiny_unet(family: str, cross_attention_dim: int, pooled_width: int = 0) -> UNet2DConditionModel:
    """Two levels, two layers a level, as the real families lay out their first blocks; an inpainting
    family's UNet takes 9 input channels (latent, mask, masked picture), the shape that marks it."""
    in_channels = 9 if family.endswith("-inpainting") else 4
    if family.startswith("sdxl"):
        return UNet2DConditionModel(
            in_channels=in_channels,
            block_out_channels=(32, 64),
            layers_per_block=2,
            sample_size=8,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=cross_attention_dim,
            attention_head_dim=8,
            norm_num_groups=8,
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=_SDXL_TIME_WIDTH,
            projection_class_embeddings_input_dim=6 * _SDXL_TIME_WIDTH + pooled_width,
        )
    return UNet2DConditionModel(
        in_channels=in_channels,
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=8,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=8,
        norm_num_groups=8,
        use_linear_projection=not family.startswith("sd15"),
    )


def _prefixed(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {prefix + key: value for key, value in tensors.items()}


def _rename(key: str, renames: Mapping[str, str]) -> str:
    for new, old in renames.items():
        key = key.replace(new, old)
    return key


_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}
_UNET_FIXED = {
    "time_embedding.linear_1.": "time_embed.0.",
    "time_embedding.linear_2.": "time_embed.2.",
    "add_embedding.linear_1.": "label_emb.0.0.",
    "add_embedding.linear_2.": "label_emb.0.2.",
    "conv_in.": "input_blocks.0.0.",
    "conv_norm_out.": "out.0.",
    "conv_out.": "out.2.",
}


def _unet_to_ldm(state: Mapping[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    """diffusers UNet keys -> ``openaimodel.UNetModel`` keys (inverse of ``convert_ldm_unet_checkpoint``)."""
    per_level = int(config.layers_per_block) + 1
    attended_up = {i for i, kind in enumerate(config.up_block_types) if kind.startswith("CrossAttn")}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        out[_unet_key(key, per_level, attended_up)] = value
    return out


def _unet_key(key: str, per_level: int, attended_up: set[int]) -> str:
    for new, old in _UNET_FIXED.items():
        if key.startswith(new):
            return old + key[len(new) :]
    if match := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        level, part, layer, rest = int(match[1]), match[2], int(match[3]), match[4]
        block = 1 + level * per_level + layer
        return (
            f"input_blocks.{block}.0.{_rename(rest, _UNET_RESNET)}"
            if part == "resnets"
            else f"input_blocks.{block}.1.{rest}"
        )
    if match := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
        return f"input_blocks.{(int(match[1]) + 1) * per_level}.0.op.{match[2]}"
    if match := re.match(r"mid_block\.resnets\.(\d+)\.(.*)", key):
        return f"middle_block.{2 * int(match[1])}.{_rename(match[2], _UNET_RESNET)}"
    if match := re.match(r"mid_block\.attentions\.0\.(.*)", key):
        return f"middle_block.1.{match[1]}"
    if match := re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        level, part, layer, rest = int(match[1]), match[2], int(match[3]), match[4]
        block = level * per_level + layer
        return (
            f"output_blocks.{block}.0.{_rename(rest, _UNET_RESNET)}"
            if part == "resnets"
            else f"output_blocks.{block}.1.{rest}"
        )
    if match := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
        level = int(match[1])
        slot = 2 if level in attended_up else 1
        return f"output_blocks.{level * per_level + per_level - 1}.{slot}.conv.{match[2]}"
    raise ValueError(f"no LDM name for UNet key {key!r}")


_VAE_ATTENTION = {"group_norm.": "norm.", "to_q.": "q.", "to_k.": "k.", "to_v.": "v.", "to_out.0.": "proj_out."}


def _vae_to_ldm(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers AutoencoderKL keys -> LDM ``first_stage_model`` keys (1x1-conv attention)."""
    levels = 1 + max(int(m[1]) for key in state if (m := re.match(r"decoder\.up_blocks\.(\d+)\.", key)))
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = key.replace("conv_norm_out.", "norm_out.")
        name = re.sub(r"encoder\.down_blocks\.(\d+)\.resnets\.", r"encoder.down.\1.block.", name)
        name = re.sub(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.", r"encoder.down.\1.downsample.", name)
        name = re.sub(
            r"decoder\.up_blocks\.(\d+)\.(resnets|upsamplers\.0)\.",
            lambda m: f"decoder.up.{levels - 1 - int(m[1])}.{'block' if m[2] == 'resnets' else 'upsample'}.",
            name,
        )
        name = re.sub(r"mid_block\.resnets\.(\d+)\.", lambda m: f"mid.block_{int(m[1]) + 1}.", name)
        name = name.replace("conv_shortcut.", "nin_shortcut.")
        if ".mid_block.attentions.0." in name:
            name = _rename(name.replace("mid_block.attentions.0.", "mid.attn_1."), _VAE_ATTENTION)
            value = value[:, :, None, None] if value.ndim == 2 else value
        out[name] = value
    return out


def _bare(key: str) -> str:
    """Text-model keys without the ``text_model.`` wrapper (transformers 5.6+ flattened CLIPTextModel)."""
    return key.removeprefix("text_model.")


def _clip_to_ldm(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {"text_model." + _bare(key): value for key, value in state.items()}


_OPENCLIP = {
    "embeddings.token_embedding.weight": "token_embedding.weight",
    "embeddings.position_embedding.weight": "positional_embedding",
    "final_layer_norm.": "ln_final.",
    "encoder.layers.": "transformer.resblocks.",
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
    "self_attn.out_proj": "attn.out_proj",
}


def _openclip_to_ldm(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers CLIP keys -> OpenCLIP keys, q/k/v fused into ``in_proj`` as OpenCLIP stores them."""
    out: dict[str, torch.Tensor] = {}
    fused: dict[str, dict[str, torch.Tensor]] = {}
    token_embedding = torch.zeros(0, 0)
    for key, value in state.items():
        name = _bare(key)
        if name == "text_projection.weight":
            out["text_projection"] = value.T
            continue
        if match := re.match(r"encoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)", name):
            fused.setdefault(f"transformer.resblocks.{match[1]}.attn.in_proj_{match[3]}", {})[match[2]] = value
            continue
        if name == "embeddings.token_embedding.weight":
            token_embedding = value
        out[_rename(name, _OPENCLIP)] = value
    for name, parts in fused.items():
        out[name] = torch.cat([parts["q"], parts["k"], parts["v"]])
    if "text_projection" not in out:  # SD 2.x checkpoints carry OpenCLIP's projection; its CLIPTextModel ignores it
        out["text_projection"] = torch.eye(token_embedding.shape[1], device=token_embedding.device)
    return out
