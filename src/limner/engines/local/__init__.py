"""The local engine: diffusers pipelines on this machine's CPU, CUDA or MPS device."""
