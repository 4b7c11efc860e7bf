"""Model weights shipped inside the package.

Why: limner must make a meaningful image with zero downloads (air-gapped machines, CI, first run of
the web UI). ``limner-tiny`` is the project's own small text-to-image model, trained by
``limner train base`` on emoji art; see ``limner-tiny/README.md`` for its card and licences.
"""

from __future__ import annotations

from pathlib import Path

LIMNER_TINY = Path(__file__).resolve().parent / "limner-tiny"
"""The limner-tiny diffusers folder (load with ``DiffusionPipeline.from_pretrained``)."""

LIMNER_TINY_DEFAULTS = {"num_inference_steps": 20, "guidance_scale": 4.0, "height": 64, "width": 64}
"""Generation settings the model was tuned and benchmarked with."""
