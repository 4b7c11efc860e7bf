"""Sliding-window counters for login throttling and per-user job rate limits.

Failed logins have two budgets in one window: per username and client address (a user who
mistypes is slowed alone), and per client address over all usernames (one password tried
against many accounts, "password spraying", is slowed too). See :class:`LoginThrottle`.

Why in memory, per app: limits protect this process; each app instance owns its counters (no
module-level state), so several processes each count on their own.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable


class SlidingWindow:
    """Counts events per key over the last ``window`` seconds."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _trim(self, key: str, now: float) -> deque[float]:
        events = self._events[key]
        while events and events[0] <= now - self.window:
            events.popleft()
        return events

    def blocked(self, key: str, limit: int | None = None) -> float:
        """Seconds until ``key`` may act again (0 when it may act now); ``limit`` overrides the default."""
        allowed = self.limit if limit is None else limit
        with self._lock:
            now = self._clock()
            events = self._trim(key, now)
            if len(events) < allowed:
                return 0.0
            return max(0.0, events[len(events) - allowed] + self.window - now)

    def hit(self, key: str) -> None:
        with self._lock:
            now = self._clock()
            self._trim(key, now).append(now)

    def try_hit(self, key: str) -> float:
        """Record an event if allowed; return 0, or the seconds to wait when over the limit."""
        with self._lock:
            now = self._clock()
            events = self._trim(key, now)
            if len(events) >= self.limit:
                return max(0.0, events[0] + self.window - now)
            events.append(now)
            return 0.0

    def reset(self, key: str) -> None:
        with self._lock:
            self._events.pop(key, None)


class LoginThrottle:
    """The two failed-login budgets over one window of counters.

    A success clears only the username + address budget: otherwise an attacker holding one valid
    account could log into it between guesses and never run out of the per-address budget.
    """

    def __init__(self, failures: SlidingWindow, per_address_limit: int) -> None:
        self._failures = failures
        self._per_address_limit = per_address_limit

    @staticmethod
    def _keys(username: str, address: str) -> tuple[str, str]:
        return f"user|{username.lower()}|{address}", f"address|{address}"

    def blocked(self, username: str, address: str) -> float:
        """Seconds until a login for ``username`` from ``address`` may be tried (0: now)."""
        user_key, address_key = self._keys(username, address)
        return max(self._failures.blocked(user_key), self._failures.blocked(address_key, limit=self._per_address_limit))

    def failed(self, username: str, address: str) -> None:
        for key in self._keys(username, address):
            self._failures.hit(key)

    def succeeded(self, username: str, address: str) -> None:
        self._failures.reset(self._keys(username, address)[0])
