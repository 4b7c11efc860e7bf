"""Converting one PyTorch module (UNet, VAE decoder, CLIP text encoder) to an OpenVINO model on disk.

Why from a rebuilt module and not the loaded one: the loaded module is shared by every run of a
model, and LoRA adapters live inside it (peft layers). The conversion reads the module's plain
weights as a state dict and its active LoRA adapters as :class:`LoraPatch` es, builds a fresh module
of the same class and config around those tensors (``assign=True``: no copy) and traces that. The
shared module is never written to, so runs in flight on it are unaffected.

Why a LoRA's scale is an input of the graph: users move LoRA weights all the time (``<lora:x:0.7>``,
a slider in the studio), and a conversion of an SD-sized UNet takes minutes. Each patched layer of
the rebuilt module computes ``W x + scale * B (A x)`` (peft's own arithmetic), with every scale read
from one vector input (:func:`lora_scales`: one entry per patched layer and adapter, peft's
``scaling``, so per-block weights work too). A LoRA set is converted once (:func:`lora_key` hashes
the adapters' names and weights, not their scales) and any weight runs on it. The low-rank products
cost a little at every step (rank over width: a few percent of an SD UNet's linear work).

Why in a child process for large modules: tracing and converting hold several copies of the weights
for a while (the traced graph's constants, OpenVINO's constants, its transformations), and memory
freed in a long-lived process is not always returned to the system. A child process writes the
model to disk and exits, so its peak goes with it; the parent then only reads and compiles the
saved model. Small modules (limner-tiny) convert in-process: starting a child costs more than they do.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import pickle
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from limner import __version__

logger = logging.getLogger(__name__)

CHILD_PROCESS_MIN_BYTES = 256 * 1024 * 1024
"""Modules with at least this many bytes of weights are converted in a child process."""

PART_NAMES = {"unet": "UNet", "vae-decoder": "VAE decoder", "text-encoder": "text encoder"}


class UnsupportedAdapterError(Exception):
    """An active adapter that cannot be patched into the graph (DoRA, LoRA biases, embeddings): run PyTorch instead."""


LORA_FORMAT = "scale-input 1"
"""Part of every LoRA set's key: how the set is put into the graph (its scales as an input)."""


@dataclass(frozen=True)
class LoraPatch:
    """One active adapter of one patched layer: ``layer`` (its name in the module) gains
    ``scales[index] * up(down(x))``; ``down``/``up`` are peft's ``lora_A``/``lora_B``, a linear map or
    a convolution (``stride``, ``padding``, ``groups`` as peft built them). Plain data, so it crosses
    to the conversion's child process; the two weights travel beside the state dict."""

    layer: str
    index: int
    convolution: bool
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] | str = ()  # a convolution's, or "same" / "valid"
    up_groups: int = 1


@dataclass(frozen=True)
class Conversion:
    """What to convert: ``part`` of a module (its class and config), at ``shape``, written to ``path``,
    with ``loras`` patched in (their weights: ``<index>.down`` / ``<index>.up`` of the LoRA tensors)."""

    part: str  # "unet", "vae-decoder", "text-encoder"
    module_class: type
    config: Any
    shape: tuple[int, ...]  # latent (height, width) [+ SDXL's pooled width and time ids], or the token count
    path: Path
    threads: int
    loras: tuple[LoraPatch, ...] = ()


def convert(module: Any, part: str, shape: tuple[int, ...], path: Path, label: str, threads: int) -> int:
    """Write ``part`` of ``module`` (its active LoRAs patched in, their scales an input) as an OpenVINO
    model at ``path`` (``.xml`` + ``.bin``).

    Returns the peak resident memory of the child process that converted it, in bytes (0: converted here).
    """
    state = plain_state(module)
    patches, lora_tensors = lora_patches(module)
    size = sum(tensor.numel() * tensor.element_size() for tensor in state.values())
    job = Conversion(part, type(module), module.config, shape, path, threads, patches)
    in_child = size >= CHILD_PROCESS_MIN_BYTES
    logger.warning(
        "converting the %s of %s for OpenVINO (once; cached in %s)...", PART_NAMES.get(part, part), label, path.parent
    )
    started = time.perf_counter()
    peak = _convert_in_child(job, state, lora_tensors) if in_child else _convert_here(job, state, lora_tensors)
    where = f"; peak memory of the child process {peak / 2**30:.1f} GiB" if peak else ""
    logger.info("converted the %s of %s in %.0f s%s", PART_NAMES.get(part, part), label,
                time.perf_counter() - started, where)  # fmt: skip
    return peak


def plain_state(module: Any) -> dict[str, torch.Tensor]:
    """The module's state dict without LoRA tensors, under the names of the unpatched module.

    peft wraps a patched layer as ``name.base_layer`` beside ``name.lora_A.<adapter>``; the plain
    module has ``name.weight``. The tensors are the module's own (not copied).
    """
    state: dict[str, torch.Tensor] = {}
    for key, tensor in module.state_dict().items():
        parts = key.split(".")
        if any(part.startswith("lora_") for part in parts):
            continue
        state[".".join(part for part in parts if part != "base_layer")] = tensor.detach()
    return state


def lora_key(loras: list[tuple[str, Any, str]]) -> str:
    """A digest of ``loras`` (:func:`active_loras`: layer and adapter names, in order, and their weights;
    not their scales, an input of the graph); ``""`` when there are none."""
    if not loras:
        return ""
    digest = hashlib.sha256(LORA_FORMAT.encode())
    for name, layer, adapter in loras:
        digest.update(f"{name} {adapter}".encode())
        for holder in (layer.lora_A, layer.lora_B):
            digest.update(_tensor_bytes(holder[adapter].weight))
    return digest.hexdigest()[:16]


def lora_scales(loras: list[tuple[str, Any, str]]) -> np.ndarray:
    """The graph's LoRA scale input: peft's ``scaling`` of each of ``loras`` (:func:`active_loras`) as
    its layer holds it now (float32, one entry per :class:`LoraPatch`)."""
    return np.array([layer.scaling[adapter] for _, layer, adapter in loras], dtype=np.float32)


def lora_patches(module: Any) -> tuple[tuple[LoraPatch, ...], dict[str, torch.Tensor]]:
    """The active adapters of ``module`` as patches, and their weights (``<index>.down``, ``<index>.up``)."""
    patches: list[LoraPatch] = []
    tensors: dict[str, torch.Tensor] = {}
    for index, (name, layer, adapter) in enumerate(active_loras(module)):
        down, up = layer.lora_A[adapter], layer.lora_B[adapter]
        convolution = isinstance(down, torch.nn.Conv2d)
        patches.append(
            LoraPatch(name, index, convolution, tuple(down.stride), _padding(down.padding), up.groups)
            if convolution
            else LoraPatch(name, index, convolution)
        )
        tensors[f"{index}.down"], tensors[f"{index}.up"] = down.weight.detach(), up.weight.detach()
    return tuple(patches), tensors


def weights_key(module: Any) -> str:
    """A digest of the module's plain weights (LoRAs left out) and config, the OpenVINO version and limner's."""
    import openvino

    digest = hashlib.sha256()
    config = module.config.to_dict() if hasattr(module.config, "to_dict") else dict(module.config)
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    digest.update(f"openvino {openvino.__version__} limner {__version__}".encode())
    for name, tensor in sorted(plain_state(module).items()):
        digest.update(name.encode())
        digest.update(_tensor_bytes(tensor))
    return digest.hexdigest()[:32]


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    return bytes(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())


def _lora_layers(module: Any) -> list[tuple[str, Any]]:
    if not getattr(module, "peft_config", None):
        return []
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [(name, layer) for name, layer in module.named_modules() if isinstance(layer, BaseTunerLayer)]


def _padding(padding: Any) -> tuple[int, ...] | str:
    return padding if isinstance(padding, str) else tuple(padding)


def _active_adapters(layer: Any) -> list[str]:
    """The adapters a peft layer adds to its output now (none while disabled or already merged in):
    those it holds weights of, in any of its adapter dicts (``lora_A``, ``lora_embedding_A``, ...)."""
    if layer.disable_adapters or layer.merged:
        return []
    held = [getattr(layer, name, {}) for name in layer.adapter_layer_names]
    return [adapter for adapter in layer.active_adapters if any(adapter in weights for weights in held)]


def active_loras(module: Any) -> list[tuple[str, Any, str]]:
    """(layer name, peft layer, adapter) for every active adapter of ``module``, in a fixed order: the
    order of :func:`lora_key` and of the graph's scale input. Raises :class:`UnsupportedAdapterError`
    for one that is not a plain low-rank update of a linear or 2-D convolution layer (DoRA, LoRA
    biases, other variants, embeddings)."""
    pairs = []
    for name, layer in _lora_layers(module):
        for adapter in _active_adapters(layer):
            down, up = dict(layer.lora_A.items()).get(adapter), dict(layer.lora_B.items()).get(adapter)
            plain_kind = (isinstance(down, torch.nn.Linear) and isinstance(up, torch.nn.Linear)) or (
                isinstance(down, torch.nn.Conv2d) and isinstance(up, torch.nn.Conv2d)
            )
            if (
                not plain_kind
                or layer.use_dora.get(adapter)
                or getattr(layer, "lora_bias", {}).get(adapter)
                or adapter in getattr(layer, "lora_variant", {})
                or getattr(layer, "fan_in_fan_out", False)
            ):
                raise UnsupportedAdapterError(
                    f"adapter {adapter} of {name} is not a plain LoRA of a linear or convolution layer "
                    "(DoRA, biases, embeddings)"
                )
            pairs.append((name, layer, adapter))
    return pairs


def _convert_here(job: Conversion, state: dict[str, torch.Tensor], lora_tensors: dict[str, torch.Tensor]) -> int:
    _save(_to_openvino(job, state, lora_tensors), job.path)
    return 0


def _convert_in_child(job: Conversion, state: dict[str, torch.Tensor], lora_tensors: dict[str, torch.Tensor]) -> int:
    """Convert in ``python -m limner.engines.local.openvino_convert``; the weights go through a file
    that the child maps into memory. Returns the child's peak resident memory in bytes."""
    job.path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=job.path.parent, prefix=".convert-") as scratch:
        weights, spec = Path(scratch) / "weights.pt", Path(scratch) / "job.pickle"
        torch.save({"state": state, "loras": lora_tensors}, weights)
        del state, lora_tensors
        spec.write_bytes(pickle.dumps((job, weights)))
        done = subprocess.run([sys.executable, "-m", __name__, str(spec)], capture_output=True, text=True,
                              check=False)  # fmt: skip
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"converting the {job.part} for OpenVINO failed (exit {done.returncode}): {tail}")
    peaks = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("peak_rss_kb ")]
    return int(peaks[-1]) * 1024 if peaks else 0


def _to_openvino(job: Conversion, state: dict[str, torch.Tensor], lora_tensors: dict[str, torch.Tensor]) -> Any:
    import openvino

    module = _rebuild(job.module_class, job.config, state)
    scales = _patch_loras(module, job.loras, lora_tensors)
    traced, example = _traced(job.part, module, job.shape)
    if job.loras:
        traced, example = _WithLoraScales(traced, scales), (*example, torch.ones(len(job.loras)))
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer's notes on Python-side branches are expected: the graph is traced per shape.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return openvino.convert_model(traced.eval(), example_input=example)


def _save(model: Any, path: Path) -> None:
    import openvino

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.xml")
    openvino.save_model(model, str(partial), compress_to_fp16=False)
    partial.with_suffix(".bin").replace(path.with_suffix(".bin"))
    partial.replace(path)  # the .xml last: a half-written conversion is never read


def _rebuild(module_class: type, config: Any, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """A module of ``module_class`` and ``config`` around ``state`` (parameters taken, not copied)."""
    from accelerate import init_empty_weights

    with init_empty_weights():
        if hasattr(module_class, "from_config"):  # diffusers
            module = module_class.from_config(config)
        else:  # transformers; the token table's rows rule (a textual-inversion word, unloaded, leaves the
            # config's vocab_size grown while the table is back to its own size)
            config = copy.deepcopy(config)
            for key, tensor in state.items():
                if key.endswith("token_embedding.weight"):
                    config.vocab_size = tensor.shape[0]
            module = module_class(config)
    module.load_state_dict(state, strict=True, assign=True)
    return module.eval()


class _Scales:
    """The LoRA scale vector of the call being traced, read by every :class:`_PatchedLayer`."""

    value: torch.Tensor


class _PatchedLayer(torch.nn.Module):
    """A linear or convolution layer plus its LoRA patches: ``base(x) + sum(scales[i] * up_i(down_i(x)))``,
    peft's vanilla LoRA forward with each scale taken from the graph's input."""

    def __init__(self, base: torch.nn.Module, patches: list[LoraPatch], tensors: dict[str, torch.Tensor],
                 scales: _Scales) -> None:  # fmt: skip
        super().__init__()
        self.base = base
        self.patches = patches
        self.scales = scales
        for patch in patches:
            self.register_buffer(f"down_{patch.index}", tensors[f"{patch.index}.down"], persistent=False)
            self.register_buffer(f"up_{patch.index}", tensors[f"{patch.index}.up"], persistent=False)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        result = self.base(x, *args, **kwargs)
        for patch in self.patches:
            down, up = getattr(self, f"down_{patch.index}"), getattr(self, f"up_{patch.index}")
            if patch.convolution:
                low = torch.nn.functional.conv2d(x, down, stride=patch.stride, padding=patch.padding)
                delta = torch.nn.functional.conv2d(low, up, groups=patch.up_groups)
            else:
                delta = torch.nn.functional.linear(torch.nn.functional.linear(x, down), up)
            result = result + delta * self.scales.value[patch.index]
        return result


def _patch_loras(module: torch.nn.Module, patches: tuple[LoraPatch, ...], tensors: dict[str, torch.Tensor]) -> _Scales:
    """Replace each patched layer of the rebuilt ``module`` by a :class:`_PatchedLayer`; the scales they share."""
    scales = _Scales()
    by_layer: dict[str, list[LoraPatch]] = {}
    for patch in patches:
        by_layer.setdefault(patch.layer, []).append(patch)
    for name, layer_patches in by_layer.items():
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, child, _PatchedLayer(getattr(parent, child), layer_patches, tensors, scales))
    return scales


class _WithLoraScales(torch.nn.Module):
    """A traced wrapper with one more input, last: the LoRA scale vector its patched layers read."""

    def __init__(self, inner: torch.nn.Module, scales: _Scales) -> None:
        super().__init__()
        self.inner = inner
        self.scales = scales

    def forward(self, *inputs: torch.Tensor) -> Any:
        self.scales.value = inputs[-1]
        return self.inner(*inputs[:-1])


class _TracedUNet(torch.nn.Module):
    """The UNet with positional inputs and a tensor output, as the converter traces it."""

    def __init__(self, unet: Any) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        return self.unet(sample, timestep, encoder_hidden_states=hidden, return_dict=False)[0]


class _TracedSDXLUNet(_TracedUNet):
    """SDXL's UNet (base or refiner): its ``added_cond_kwargs`` (the pooled text embedding and the
    size/crop/aesthetic time ids) become two more positional inputs."""

    def forward(  # type: ignore[override]
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        hidden: torch.Tensor,
        text_embeds: torch.Tensor,
        time_ids: torch.Tensor,
    ) -> torch.Tensor:
        added = {"text_embeds": text_embeds, "time_ids": time_ids}
        return self.unet(sample, timestep, encoder_hidden_states=hidden, added_cond_kwargs=added, return_dict=False)[0]


class _TracedDecoder(torch.nn.Module):
    """The VAE's decode (post-quant conv and decoder) with a tensor in and out."""

    def __init__(self, vae: Any) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents, return_dict=False)[0]


class _TracedText(torch.nn.Module):
    """A CLIP text encoder: token ids in; the last hidden state, the pooled output (``pooler_output``,
    or ``text_embeds`` with a projection) and every hidden state out, so callers pick what they read."""

    def __init__(self, encoder: Any) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
        output = self.encoder(input_ids, output_hidden_states=True, return_dict=True)
        pooled = output.text_embeds if hasattr(output, "text_embeds") else output.pooler_output
        return (output.last_hidden_state, pooled, *output.hidden_states)


def _traced(part: str, module: Any, shape: tuple[int, ...]) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    """The wrapper the converter traces for ``part``, and an example input of ``shape``."""
    config = module.config
    if part == "vae-decoder":
        return _TracedDecoder(module), (torch.randn(1, config.latent_channels, *shape),)
    if part == "text-encoder":
        ids = torch.randint(0, config.vocab_size, (2, *shape))
        ids[:, -1] = config.eos_token_id if config.eos_token_id < config.vocab_size else config.vocab_size - 1
        return _TracedText(module), (ids,)
    width = config.cross_attention_dim
    example = (
        torch.randn(2, config.in_channels, *shape[:2]),
        torch.tensor([10.0, 10.0]),
        torch.randn(2, 77, width if isinstance(width, int) else width[0]),
    )
    if len(shape) == 4:  # SDXL: (height, width, pooled embedding width, number of time ids)
        return _TracedSDXLUNet(module), (*example, torch.randn(2, shape[2]), torch.rand(2, shape[3]) * 1024)
    return _TracedUNet(module), example


def _peak_rss_kb() -> int:
    """This process's peak resident memory (``VmHWM``), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def main(spec: str) -> None:
    """The child process: read the job and the mapped weights, convert, save, report the peak memory."""
    job, weights = pickle.loads(Path(spec).read_bytes())  # written by our parent just now
    torch.set_num_threads(max(1, job.threads))
    saved = torch.load(weights, mmap=True, weights_only=True)
    _save(_to_openvino(job, saved["state"], saved["loras"]), job.path)
    print(f"peak_rss_kb {_peak_rss_kb()}", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main(sys.argv[1])
