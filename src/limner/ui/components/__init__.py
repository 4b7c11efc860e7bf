"""Pieces several pages share: error messages, "not available" notices, job progress, image grids."""
