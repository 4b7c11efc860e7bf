"""Model weights shipped inside the package.

Why: limner must make a meaningful image with zero downloads (air-gapped machines, CI, first run of
the web UI). ``limner-tiny`` is the project's own small text-to-image model, trained by
``limner train base`` on emoji art; see ``limner-tiny/README.md`` for its card and licences.
"""

from __future__ import annotations

from pathlib import Path

from limner.model_defaults import load_model_defaults, pipeline_arguments

LIMNER_TINY = Path(__file__).resolve().parent / "limner-tiny"
"""The limner-tiny diffusers folder (load with ``DiffusionPipeline.from_pretrained``)."""

LIMNER_TINY_EDIT = Path(__file__).resolve().parent / "limner-tiny-edit"
"""The limner-tiny-edit folder: an InstructPix2Pix pipeline trained from limner-tiny by ``limner train edit``."""

LIMNER_TINY_CHARACTER = Path(__file__).resolve().parent / "limner-tiny-character"
"""The limner-tiny-character IP-Adapter folder (``ip-adapter.safetensors`` + ``image_encoder/``), trained
by ``limner train ip-adapter``; the default adapter of ``limner character`` on limner-tiny."""

LIMNER_TINY_DEFAULTS = pipeline_arguments(load_model_defaults()["limner-tiny"])
"""Generation settings the model was tuned and benchmarked with, as diffusers pipeline arguments
(read from ``limner/data/model_defaults.toml``, the table the generation service uses)."""
