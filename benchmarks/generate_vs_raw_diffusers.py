"""Whole-process CPU time of ``limner generate`` on limner-tiny against a minimal raw-diffusers script.

Why: the CLI's own overhead (imports, settings, request resolution, PNG metadata) should be lost in
the model's cost; issue 13's bar is limner <= 1.05x the raw script's CPU time (user + system, of the
whole process: imports, loading and inference). Both run on the CPU with the same prompt, seed,
steps, guidance and size: limner is run once first, and the raw script takes the values limner
recorded in that PNG, so the two do the same work whatever defaults limner resolves. Pairs run
alternately (which one goes first alternates too); the median of the per-pair ratios is printed.

    .venv/bin/python benchmarks/generate_vs_raw_diffusers.py [--pairs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from cli_startup import ChildRun, limner_command, run_measured  # the script's own folder is on sys.path

from limner.imaging.png import read_parameters
from limner.weights import LIMNER_TINY, LIMNER_TINY_DEFAULTS

PROMPT = "an emoji of a red apple"
SEED = 7

RAW_SCRIPT = """
import json, sys

import torch
from diffusers import StableDiffusionPipeline

spec = json.loads(sys.argv[1])
pipeline = StableDiffusionPipeline.from_pretrained(spec["model"], use_safetensors=True)
pipeline.set_progress_bar_config(disable=True)
image = pipeline(
    spec["prompt"],
    negative_prompt=spec["negative_prompt"] or None,
    num_inference_steps=spec["steps"],
    guidance_scale=spec["guidance_scale"],
    width=spec["width"],
    height=spec["height"],
    generator=torch.Generator("cpu").manual_seed(spec["seed"]),
).images[0]
image.save(spec["out"])
"""


def limner_run(folder: Path, env: dict[str, str]) -> tuple[ChildRun, Path]:
    out = folder / f"limner-{len(list(folder.glob('limner-*')))}"
    command = [*limner_command(), "generate", PROMPT, "--seed", str(SEED), "-n", "1", "--out", str(out)]
    run = run_measured(command, env=env)
    if run.returncode:
        raise SystemExit(f"limner generate failed: {run.stderr[-2000:]}")
    return run, next(out.glob("*.png"))


def raw_run(script: Path, spec: dict[str, object], env: dict[str, str]) -> ChildRun:
    run = run_measured([sys.executable, str(script), json.dumps(spec)], env=env)
    if run.returncode:
        raise SystemExit(f"raw diffusers script failed: {run.stderr[-2000:]}")
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="limner-bench-") as scratch:
        folder = Path(scratch)
        env = {**os.environ, "LIMNER_DEVICE": "cpu", "LIMNER_DATA_DIR": str(folder / "data"),
               "LIMNER_DEFAULT_MODEL": "limner-tiny", "HF_HUB_OFFLINE": "1"}  # fmt: skip
        _, first = limner_run(folder, env)  # warms the file cache; not counted
        record, _ = read_parameters(first)
        assert record is not None, "limner wrote no parameters"
        request = record.request
        spec = {"model": str(LIMNER_TINY), "prompt": request.prompt, "negative_prompt": request.negative_prompt,
                "steps": request.steps, "guidance_scale": request.guidance_scale, "width": record.width,
                "height": record.height, "seed": record.seed, "out": str(folder / "raw.png")}  # fmt: skip
        print(f"limner ran {record.model_name}: {request.steps} steps, guidance {request.guidance_scale:g}, "
              f"{record.width}x{record.height}, scheduler {record.scheduler}, seed {record.seed}")  # fmt: skip
        print(f"model defaults table for limner-tiny: {LIMNER_TINY_DEFAULTS}")
        script = folder / "raw_diffusers.py"
        script.write_text(RAW_SCRIPT, encoding="utf-8")
        raw_run(script, spec, env)  # warm-up, not counted
        pairs: list[tuple[ChildRun, ChildRun]] = []
        for index in range(args.pairs):
            if index % 2 == 0:
                ours, _ = limner_run(folder, env)
                raw = raw_run(script, spec, env)
            else:
                raw = raw_run(script, spec, env)
                ours, _ = limner_run(folder, env)
            pairs.append((ours, raw))
            print(f"pair {index + 1}: limner {ours.cpu_s:.2f} s CPU ({ours.wall_s:.2f} s wall, "
                  f"{ours.max_rss_mb:.0f} MB), raw {raw.cpu_s:.2f} s CPU ({raw.wall_s:.2f} s wall, "
                  f"{raw.max_rss_mb:.0f} MB), ratio {ours.cpu_s / raw.cpu_s:.3f}")  # fmt: skip
        same = _pixels(first) == _pixels(folder / "raw.png")
    print(f"median CPU: limner {statistics.median(o.cpu_s for o, _ in pairs):.2f} s, "
          f"raw diffusers {statistics.median(r.cpu_s for _, r in pairs):.2f} s")  # fmt: skip
    print(f"median CPU ratio limner / raw: {statistics.median(o.cpu_s / r.cpu_s for o, r in pairs):.3f}  "
          f"(same pixels: {same})")  # fmt: skip


def _pixels(path: Path) -> bytes:
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB").tobytes()


if __name__ == "__main__":
    main()
