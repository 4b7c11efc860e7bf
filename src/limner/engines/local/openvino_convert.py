"""Converting one PyTorch module (UNet, VAE decoder, CLIP text encoder) to an OpenVINO model on disk.

Why from a rebuilt module and not the loaded one: the loaded module is shared by every run of a
model, and LoRA adapters live inside it (peft layers). The conversion reads the module's weights as
a plain state dict, with the active LoRA adapters added into the weights they patch (``W + scale *
B @ A``, peft's own ``get_delta_weight``), builds a fresh module of the same class and config around
those tensors (``assign=True``: no copy of the unpatched ones) and traces that. The shared module is
never written to, so runs in flight on it are unaffected and nothing has to be unfused afterwards.

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

import torch

from limner import __version__

logger = logging.getLogger(__name__)

CHILD_PROCESS_MIN_BYTES = 256 * 1024 * 1024
"""Modules with at least this many bytes of weights are converted in a child process."""

PART_NAMES = {"unet": "UNet", "vae-decoder": "VAE decoder", "text-encoder": "text encoder"}


class UnsupportedAdapterError(Exception):
    """An active adapter that cannot be added into the weights (DoRA, LoRA biases): run PyTorch instead."""


@dataclass(frozen=True)
class Conversion:
    """What to convert: ``part`` of a module (its class and config), at ``shape``, written to ``path``."""

    part: str  # "unet", "vae-decoder", "text-encoder"
    module_class: type
    config: Any
    shape: tuple[int, ...]  # latent (height, width) [+ SDXL's pooled width and time ids], or the token count
    path: Path
    threads: int


def convert(module: Any, part: str, shape: tuple[int, ...], path: Path, label: str, threads: int) -> int:
    """Write ``part`` of ``module`` (active LoRAs added in) as an OpenVINO model at ``path`` (``.xml`` + ``.bin``).

    Returns the peak resident memory of the child process that converted it, in bytes (0: converted here).
    """
    state = folded_state(module)
    size = sum(tensor.numel() * tensor.element_size() for tensor in state.values())
    job = Conversion(part, type(module), module.config, shape, path, threads)
    in_child = size >= CHILD_PROCESS_MIN_BYTES
    logger.warning(
        "converting the %s of %s for OpenVINO (once; cached in %s)...", PART_NAMES.get(part, part), label, path.parent
    )
    started = time.perf_counter()
    peak = _convert_in_child(job, state) if in_child else _convert_here(job, state)
    where = f"; peak memory of the child process {peak / 2**30:.1f} GiB" if peak else ""
    logger.info("converted the %s of %s in %.0f s%s", PART_NAMES.get(part, part), label,
                time.perf_counter() - started, where)  # fmt: skip
    return peak


def folded_state(module: Any) -> dict[str, torch.Tensor]:
    """The module's weights under its plain names, with every active LoRA adapter added in.

    peft wraps a patched layer as ``name.base_layer`` beside ``name.lora_A.<adapter>``; the plain
    module has ``name.weight``. Unpatched tensors are the module's own (not copied).
    """
    state = plain_state(module)
    for name, layer in _lora_layers(module):
        for adapter in _active_adapters(layer):
            key = f"{name}.weight"
            state[key] = state[key] + layer.get_delta_weight(adapter).to(state[key].dtype)
    return state


def plain_state(module: Any) -> dict[str, torch.Tensor]:
    """The module's state dict without LoRA tensors, under the names of the unpatched module."""
    state: dict[str, torch.Tensor] = {}
    for key, tensor in module.state_dict().items():
        parts = key.split(".")
        if any(part.startswith("lora_") for part in parts):
            continue
        state[".".join(part for part in parts if part != "base_layer")] = tensor.detach()
    return state


def lora_key(module: Any) -> str:
    """A digest of the LoRA adapters active in ``module`` (names, scales, weights); ``""`` when none is.

    Raises :class:`UnsupportedAdapterError` for an adapter that is not a plain low-rank update.
    """
    digest = hashlib.sha256()
    found = False
    for name, layer in _lora_layers(module):
        for adapter in _active_adapters(layer):
            if (
                layer.use_dora.get(adapter)
                or getattr(layer, "lora_bias", {}).get(adapter)
                or adapter not in layer.lora_B
            ):
                raise UnsupportedAdapterError(f"adapter {adapter} of {name} is not a plain LoRA (DoRA, biases)")
            found = True
            digest.update(f"{name} {adapter} {layer.scaling[adapter]!r}".encode())
            for holder in (layer.lora_A, layer.lora_B):
                digest.update(_tensor_bytes(holder[adapter].weight))
    return digest.hexdigest()[:16] if found else ""


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


def _active_adapters(layer: Any) -> list[str]:
    """The adapters a peft layer adds to its output now (none while disabled or already merged in)."""
    if layer.disable_adapters or layer.merged:
        return []
    return [adapter for adapter in layer.active_adapters if adapter in layer.lora_A]


def _convert_here(job: Conversion, state: dict[str, torch.Tensor]) -> int:
    _save(_to_openvino(job, state), job.path)
    return 0


def _convert_in_child(job: Conversion, state: dict[str, torch.Tensor]) -> int:
    """Convert in ``python -m limner.engines.local.openvino_convert``; the weights go through a file
    that the child maps into memory. Returns the child's peak resident memory in bytes."""
    job.path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=job.path.parent, prefix=".convert-") as scratch:
        weights, spec = Path(scratch) / "weights.pt", Path(scratch) / "job.pickle"
        torch.save(state, weights)
        del state
        spec.write_bytes(pickle.dumps((job, weights)))
        done = subprocess.run([sys.executable, "-m", __name__, str(spec)], capture_output=True, text=True,
                              check=False)  # fmt: skip
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"converting the {job.part} for OpenVINO failed (exit {done.returncode}): {tail}")
    peaks = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("peak_rss_kb ")]
    return int(peaks[-1]) * 1024 if peaks else 0


def _to_openvino(job: Conversion, state: dict[str, torch.Tensor]) -> Any:
    import openvino

    module = _rebuild(job.module_class, job.config, state)
    traced, example = _traced(job.part, module, job.shape)
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
    state = torch.load(weights, mmap=True, weights_only=True)
    _save(_to_openvino(job, state), job.path)
    print(f"peak_rss_kb {_peak_rss_kb()}", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main(sys.argv[1])
