"""IP-Adapter training for a frozen text-to-image UNet (Ye et al., 2023), in diffusers' own modules.

Why the standard recipe: the UNet, text encoder and VAE stay frozen; only an image projection and
a decoupled key/value pair per cross-attention layer (``IPAdapterAttnProcessor2_0``'s ``to_k_ip`` /
``to_v_ip``) are trained. The modules are installed with the same ``_load_ip_adapter_weights`` call
``load_ip_adapter`` makes at inference, so training and generation run the same code, and the
export is the h94/IP-Adapter file layout (``image_proj.*`` + ``ip_adapter.<n>.to_k_ip/to_v_ip``)
any diffusers pipeline loads.

Two projections, as h94 ships them: ``plus_tokens=0`` is the plain adapter (``ImageProjection``:
the pooled image embedding -> 4 context tokens), the one limner-tiny-character ships; ``plus_tokens=N``
is IP-Adapter Plus (``IPAdapterPlusImageProjection``: a 4-block perceiver resampler from the
encoder's penultimate per-patch features to N tokens). On limner-tiny the Plus design scored no
better on the character bar for the same CPU budget (the model folder's ``TRAINING.md`` has both
runs), so it is an option (``limner train ip-adapter --plus-tokens 16``), not the default.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from diffusers.models.attention_processor import IPAdapterAttnProcessor, IPAdapterAttnProcessor2_0
from diffusers.models.embeddings import ImageProjection, IPAdapterPlusImageProjection
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from diffusers.schedulers.scheduling_ddpm import DDPMScheduler
from safetensors.torch import save_file
from torch import nn
from transformers import CLIPTextModel, CLIPTokenizer

from limner.training.architecture import SD_SCHEDULE
from limner.training.autoencoder import lr_factor
from limner.training.checkpoint import restore_training_state, training_state
from limner.training.data import batch_indices, pick_captions, step_generator
from limner.training.diffusion import PromptIds, min_snr_weights, training_noise
from limner.training.ema import EMA

ADAPTER_FILE = "ip-adapter.safetensors"
IMAGE_TOKENS = 4  # what diffusers' loader builds for an ``image_proj.proj`` adapter
RESAMPLER_DEPTH = 4  # diffusers' loader builds IP-Adapter Plus resamplers with 4 blocks
RESAMPLER_HEAD_DIM = 64  # ... and infers the heads as to_q's width / 64


@dataclass(frozen=True)
class AdapterTrainConfig:
    batch_size: int = 32
    total_steps: int = 3000
    learning_rate: float = 3e-4
    warmup_steps: int = 100
    weight_decay: float = 0.01
    caption_dropout: float = 0.5
    image_dropout: float = 0.05
    twin_share: float = 0.5
    min_snr_gamma: float = 5.0
    noise_offset: float = 0.15
    ema_decay: float = 0.995
    seed: int = 0
    plus_tokens: int = 0  # 0: the plain adapter (pooled embedding); N: IP-Adapter Plus with N tokens
    resampler_width: int = 128


def cross_attention_names(unet: UNet2DConditionModel) -> list[str]:
    """Processor names of the cross-attention layers, in the order the adapter file numbers them."""
    return [name for name in unet.attn_processors if name.endswith("attn2.processor")]


def _attention(unet: UNet2DConditionModel, processor_name: str) -> Any:
    module: Any = unet
    for part in processor_name.removesuffix(".processor").split("."):
        module = module[int(part)] if part.isdigit() else getattr(module, part)
    return module


# Module names inside one resampler block: diffusers' -> h94's Plus file (what diffusers' loader converts
# back). ``attn.to_k`` and ``attn.to_v`` go into one ``0.to_kv`` tensor.
_RESAMPLER_FILE_NAMES = {
    "ln0": "0.norm1",
    "ln1": "0.norm2",
    "attn.to_q": "0.to_q",
    "attn.to_out.0": "0.to_out",
    "ff.0": "1.0",
    "ff.1.net.0.proj": "1.1",
    "ff.1.net.2": "1.3",
}


def _resampler_to_file(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``IPAdapterPlusImageProjection`` names -> h94's Plus file names (what diffusers' loader converts back)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] != "layers":
            out[key] = value
            continue
        head, module, leaf = f"layers.{parts[1]}", ".".join(parts[2:-1]), parts[-1]
        if module == "attn.to_k":
            out[f"{head}.0.to_kv.{leaf}"] = torch.cat([value, state[f"{head}.attn.to_v.{leaf}"]])
        elif module in _RESAMPLER_FILE_NAMES:
            out[f"{head}.{_RESAMPLER_FILE_NAMES[module]}.{leaf}"] = value
        elif module != "attn.to_v":
            raise KeyError(f"unexpected resampler weight {key}")
    return out


def _projection_to_file(projection: nn.Module) -> dict[str, torch.Tensor]:
    state = {key: value.detach().float().cpu() for key, value in projection.state_dict().items()}
    if isinstance(projection, IPAdapterPlusImageProjection):
        state = _resampler_to_file(state)
    else:
        state = {key.replace("image_embeds", "proj"): value for key, value in state.items()}
    return {"image_proj." + key: value.contiguous() for key, value in state.items()}


def image_projection(image_embed_dim: int, cross_dim: int, plus_tokens: int, width: int) -> nn.Module:
    """The plain adapter's projection (``plus_tokens=0``) or a Plus resampler loadable by diffusers."""
    if plus_tokens <= 0:
        return ImageProjection(
            image_embed_dim=image_embed_dim, cross_attention_dim=cross_dim, num_image_text_embeds=IMAGE_TOKENS
        )
    if width % RESAMPLER_HEAD_DIM:
        raise ValueError(f"the resampler width must be a multiple of {RESAMPLER_HEAD_DIM}, not {width}")
    return IPAdapterPlusImageProjection(
        embed_dims=image_embed_dim,
        output_dims=cross_dim,
        hidden_dims=width,
        depth=RESAMPLER_DEPTH,
        dim_head=RESAMPLER_HEAD_DIM,
        heads=width // RESAMPLER_HEAD_DIM,
        num_queries=plus_tokens,
    )


def initial_adapter(
    unet: UNet2DConditionModel, image_embed_dim: int, seed: int = 0, plus_tokens: int = 0, width: int = 128
) -> dict[str, torch.Tensor]:
    """A fresh adapter in the file layout: a random projection; image keys/values start as the text ones.

    Why copy ``to_k`` / ``to_v``: the image tokens then start in the space the layer already reads,
    as in the IP-Adapter paper's initialisation.
    """
    torch.manual_seed(seed)
    cross_dim = int(unet.config["cross_attention_dim"])
    tensors = _projection_to_file(image_projection(image_embed_dim, cross_dim, plus_tokens, width))
    for number, name in enumerate(cross_attention_names(unet)):
        attention = _attention(unet, name)
        tensors[f"ip_adapter.{2 * number + 1}.to_k_ip.weight"] = attention.to_k.weight.detach().clone()
        tensors[f"ip_adapter.{2 * number + 1}.to_v_ip.weight"] = attention.to_v.weight.detach().clone()
    return tensors


def split_adapter(tensors: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """Flat file keys -> the ``{"image_proj": ..., "ip_adapter": ...}`` dict diffusers' loader takes."""
    parts: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
    for key, value in tensors.items():
        prefix, _, rest = key.partition(".")
        parts[prefix][rest] = value
    return parts


def install_adapter(unet: UNet2DConditionModel, tensors: dict[str, torch.Tensor]) -> nn.ModuleDict:
    """Put the adapter into ``unet`` exactly as ``load_ip_adapter`` does; return its trainable modules."""
    unet._load_ip_adapter_weights([split_adapter(tensors)], low_cpu_mem_usage=False)
    processors = unet.attn_processors
    layers: list[nn.Module] = []
    for name in cross_attention_names(unet):
        layer = processors[name]
        if not isinstance(layer, IPAdapterAttnProcessor | IPAdapterAttnProcessor2_0):
            raise TypeError(f"{name} did not take an IP-Adapter processor")
        layers.append(layer)
    if unet.encoder_hid_proj is None:
        raise TypeError("the UNet did not take the adapter's image projection")
    projection = unet.encoder_hid_proj.image_projection_layers[0]
    return nn.ModuleDict({"image_proj": projection, "layers": nn.ModuleList(layers)})


def adapter_tensors(modules: nn.ModuleDict) -> dict[str, torch.Tensor]:
    """The trainable modules back in the file layout (``image_proj.*``, ``ip_adapter.<n>.*``)."""
    tensors = _projection_to_file(modules["image_proj"])
    layers: Any = modules["layers"]
    for number, layer in enumerate(layers):
        tensors[f"ip_adapter.{2 * number + 1}.to_k_ip.weight"] = layer.to_k_ip[0].weight.detach().float().cpu()
        tensors[f"ip_adapter.{2 * number + 1}.to_v_ip.weight"] = layer.to_v_ip[0].weight.detach().float().cpu()
    return {key: value.contiguous() for key, value in tensors.items()}


def save_adapter(modules: nn.ModuleDict, folder: Path) -> Path:
    """Write ``ip-adapter.safetensors`` (float16 halves the file; diffusers loads it into float32)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ADAPTER_FILE
    tmp = path.with_suffix(".tmp")
    save_file({key: value.half() for key, value in adapter_tensors(modules).items()}, str(tmp))
    tmp.replace(path)
    return path


class AdapterTask:
    """One adapter step on cached latents and cached reference embeddings (views of self or twin)."""

    def __init__(
        self,
        unet: UNet2DConditionModel,
        text_encoder: CLIPTextModel,
        tokenizer: CLIPTokenizer,
        latents: tuple[torch.Tensor, torch.Tensor],
        scaling_factor: float,
        image_embeds: torch.Tensor,
        unconditional: torch.Tensor,
        twins: list[list[int]],
        captions: list[list[str]],
        train_indices: torch.Tensor,
        cfg: AdapterTrainConfig,
        accelerator: Accelerator,
    ) -> None:
        self.cfg = cfg
        self.accelerator = accelerator
        self.latent_mean, self.latent_std = latents
        self.scaling_factor = scaling_factor
        self.image_embeds = image_embeds  # [N, views, dim] (plain) or [N, views, patches, dim] (Plus)
        self.unconditional = unconditional  # what ``encode_image`` gives without a reference
        self.twins = twins
        self.captions = captions
        self.train_indices = train_indices
        self.prompt_ids = PromptIds(tokenizer)
        self.noise = DDPMScheduler(**SD_SCHEDULE)
        unet.requires_grad_(False)
        text_encoder.requires_grad_(False)
        initial = initial_adapter(unet, int(image_embeds.shape[-1]), cfg.seed, cfg.plus_tokens, cfg.resampler_width)
        self.modules = install_adapter(unet, initial)
        self.modules.requires_grad_(True)
        self.unet = unet.to(accelerator.device)
        self.text_encoder = text_encoder.to(accelerator.device).eval()
        self.ema = EMA(self.modules, cfg.ema_decay)
        optimizer = torch.optim.AdamW(self.modules.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        self.optimizer = accelerator.prepare(optimizer)

    def references(self, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """One cached embedding per sample: a random view of itself or of its other-style twin.

        ``image_dropout`` of them become the unconditional embedding (zeros for the plain adapter,
        the encoder's features of a blank picture for Plus), as ``encode_image`` makes for guidance.
        """
        views = self.image_embeds.shape[1]
        use_twin = torch.rand(len(idx), generator=gen) < self.cfg.twin_share
        twin_draw = torch.rand(len(idx), generator=gen)
        view = torch.randint(0, views, (len(idx),), generator=gen)
        sources = []
        for i, twin, draw in zip(idx.tolist(), use_twin.tolist(), twin_draw.tolist(), strict=True):
            others = self.twins[i]
            sources.append(others[int(draw * len(others)) % len(others)] if twin and others else i)
        embeds = self.image_embeds[torch.tensor(sources), view]
        drop = torch.rand(len(idx), generator=gen) < self.cfg.image_dropout
        embeds[drop] = self.unconditional.to(embeds.dtype)
        return embeds

    def step(self, index: int) -> dict[str, float]:
        cfg = self.cfg
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.learning_rate * lr_factor(index, cfg.warmup_steps, cfg.total_steps)
        device = self.accelerator.device
        picks = batch_indices(len(self.train_indices), cfg.batch_size, cfg.seed, index)
        idx = self.train_indices[picks]
        gen = step_generator(cfg.seed, index, stream=7)
        sample_noise = torch.randn(self.latent_mean[idx].shape, generator=gen)
        latents = (self.latent_mean[idx] + self.latent_std[idx] * sample_noise) * self.scaling_factor
        noise = training_noise(latents.shape, gen, cfg.noise_offset)
        timesteps = torch.randint(0, self.noise.config.num_train_timesteps, (len(idx),), generator=gen)
        prompts = pick_captions(self.captions, idx, gen, cfg.caption_dropout)
        references = self.references(idx, gen)
        noisy = self.noise.add_noise(latents, noise, timesteps)
        with torch.no_grad():
            hidden = self.text_encoder(self.prompt_ids(prompts).to(device))[0]
        pred = self.unet(
            noisy.to(device),
            timesteps.to(device),
            encoder_hidden_states=hidden,
            added_cond_kwargs={"image_embeds": [references[:, None].to(device)]},
        ).sample
        per_sample = (pred - noise.to(device)).pow(2).flatten(1).mean(1)
        weights = min_snr_weights(self.noise.alphas_cumprod, timesteps, cfg.min_snr_gamma).to(device)
        loss = (per_sample * weights).mean()
        self.optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        self.accelerator.clip_grad_norm_(self.modules.parameters(), 1.0)
        self.optimizer.step()
        self.ema.update(self.modules, index)
        return {"loss": loss.item(), "mse": per_sample.mean().item()}

    def ema_modules(self) -> nn.ModuleDict:
        modules: nn.ModuleDict = copy.deepcopy(self.modules).cpu()
        self.ema.copy_to(modules)
        return modules

    def state_dict(self) -> dict[str, Any]:
        return training_state("modules", self.modules, self.ema, self.optimizer)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        restore_training_state(state, "modules", self.modules, self.ema, self.optimizer)
