"""Folder names of batch items: the one slug function lives in ``limner.core.slugs``; imported here for batches."""

from limner.core.slugs import MAX_SLUG_LENGTH, slugify, unique_slug

__all__ = ["MAX_SLUG_LENGTH", "slugify", "unique_slug"]
