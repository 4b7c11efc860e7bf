"""Fine-tuning a base model on a user's subject: DreamBooth with LoRA (full fine-tune optional).

Builds on ``limner.training`` (the seeded step loop, prompt encoding, Min-SNR weights) and ends
in the model registry, so a finished run is usable by name (``--model``/``--lora my-dog``).
"""
