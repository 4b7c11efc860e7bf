"""Rate limits and login throttles shared by every API process, on Redis.

Why: with several API processes behind a load balancer, per-process counters let a user make
N times the allowed jobs (or password guesses) by spreading requests. This is the
:class:`~limner.services.auth.throttle.SlidingWindow` interface over one Redis sorted set per key
(member: one event, score: its time), so every process counts the same events.

Why not the ``limits`` library: its counters are kept per (key, limit), while the login throttle
asks of one key's failures against two different limits (per username and per address); a sorted
set of event times answers any limit exactly. Each operation is one Lua script, so concurrent
processes cannot both take the last slot, and times come from the Redis server's clock (``TIME``),
so API machines whose clocks differ agree. Redis is imported only when a Redis URL is configured.

When Redis cannot be reached the window lets the request through and logs it: a broker outage
must not turn into refused logins and jobs for everyone (the database-backed queue bound still holds).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import redis

from limner.services.auth.throttle import SlidingWindow

logger = logging.getLogger(__name__)

_SCRIPT = """
local key, mode = KEYS[1], ARGV[1]
local window, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if mode == 'blocked' or mode == 'try' then
  if count >= limit then
    local edge = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    if mode == 'try' then edge = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES') end
    return tostring(math.max(0, tonumber(edge[2]) + window - now))
  end
  if mode == 'blocked' then return '0' end
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, math.ceil(window * 1000))
return '0'
"""


class RedisSlidingWindow(SlidingWindow):
    """Counts events per key over the last ``window`` seconds, in Redis, for all processes at once."""

    def __init__(self, url: str, name: str, limit: int, window: float) -> None:
        super().__init__(limit, window)
        self._client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._script: Any = self._client.register_script(_SCRIPT)
        self._prefix = f"limner:window:{name}:"

    def _run(self, mode: str, key: str, limit: int) -> float:
        try:
            answer = self._script(keys=[self._prefix + key], args=[mode, self.window, limit, uuid.uuid4().hex])
        except redis.RedisError as exc:
            logger.warning("shared rate limit unavailable (%s); allowing the request", exc)
            return 0.0
        return float(answer)

    def blocked(self, key: str, limit: int | None = None) -> float:
        return self._run("blocked", key, self.limit if limit is None else limit)

    def hit(self, key: str) -> None:
        self._run("hit", key, self.limit)

    def try_hit(self, key: str) -> float:
        return self._run("try", key, self.limit)

    def reset(self, key: str) -> None:
        try:
            self._client.delete(self._prefix + key)
        except redis.RedisError as exc:
            logger.warning("shared rate limit unavailable (%s); %s not reset", exc, key)

    def close(self) -> None:
        self._client.close()
