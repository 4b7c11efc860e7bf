"""Prompt ideation: ideas (title, description, tags, prompt, negative prompt) from an LLM or offline.

``generate_ideas`` picks the generator; ``csv_store`` keeps ``output/batch_prompts.csv``; the data
providers (themes, elements, environments, roles ...) and few-shot examples are data files in
``limner/prompts/data`` that users extend with ``--data DIR``.
"""

from limner.prompts.ideas import PromptIdea

__all__ = ["PromptIdea"]
