"""Shared, bounded query parameters for list endpoints.

Why bounds on every number: an unbounded integer reaches the database as is, and SQLite (like
PostgreSQL's BIGINT) overflows past 2**63 - 1; the request then fails with a 500 and a dropped
connection instead of a 400 that says what to change. One definition keeps every list alike.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

MAX_OFFSET = 1_000_000_000  # far past any real gallery, far below any integer limit
MAX_LIMIT = 200

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")]
