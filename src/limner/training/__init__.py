"""Training for limner's own models: the limner-tiny base model now, fine-tuning later.

Why in the package: the shipped default model must be reproducible from one command
(``limner train base``), and a fine-tuning run (DreamBooth/LoRA) reuses the same pieces: the
captioned-image dataset, the seeded step loop with EMA, checkpoints and resume, and the export to
a standard diffusers folder that every engine task loads with no special code.

Modules, one concept each:

- ``data``: captioned images on disk (``images.npz`` + ``captions.jsonl``) and seeded batches.
- ``tokenizer``: a CLIP BPE tokenizer trimmed to the words a dataset uses, with byte fallback.
- ``architecture``: the limner-tiny component configs (VAE, UNet, text encoder, scheduler).
- ``ema``: exponential moving average of weights.
- ``checkpoint``: atomic save and load of a run's state, so a killed run resumes exactly.
- ``loop``: the shared seeded step loop (accelerate, progress, checkpoints, EMA).
- ``autoencoder``: VAE training with a colour (low-frequency) loss term.
- ``diffusion``: joint text-encoder + UNet training on cached latents.
- ``export``: writing the standard diffusers folder.
- ``base``: the whole recipe for the base model; ``cli``: the ``train`` Typer sub-app.
"""
