"""Fixed-window request throttles in Redis: logins per username and per client address, bank routes per
bank client. Answers 429 problem+json with `Retry-After` and a stable code.

One counter per (limit, identity, window): `INCR` and, on the window's first hit, `EXPIRE`, in one
Lua script so the pair is atomic; all of a request's counters go in one pipelined round trip. Keys
carry the window's index, so a new window starts from zero without anyone resetting anything, and
expire on their own after two windows. Counters are per identity: there is no global key.

When Redis is unreachable or slower than `throttle_redis_timeout_seconds`, the request is let through
(fail open) and logged, and Redis is not asked again for `throttle_retry_seconds`, so an outage costs
one short wait, not one per request. What still holds then: the per-user lockout after
`login_max_failures` wrong passwords (in PostgreSQL), and the bank's HMAC signatures.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from fupin.errors import DomainError
from fupin.settings import Settings

log = logging.getLogger("fupin.api")

_INCR = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


@dataclass(frozen=True)
class Limit:
    name: str  # part of the key, e.g. "login.user"
    limit: int  # requests allowed per window
    window: int  # seconds


class Throttled(DomainError):
    status = 429

    def __init__(self, code: str, limit: Limit, retry_after: int) -> None:
        super().__init__(code, f"too many requests ({limit.limit} per {limit.window} s); retry after {retry_after} s",
                         f"请求过于频繁(每 {limit.window} 秒 {limit.limit} 次),请 {retry_after} 秒后重试",
                         extra={"retry_after": retry_after, "limit": limit.name})


class Throttle:
    """The limits of one process, read from settings; `clock` is wall time in seconds (tests move it)."""

    def __init__(self, redis: Redis | None, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.clock = clock
        self.prefix = settings.throttle_key_prefix
        self.timeout = settings.throttle_redis_timeout_seconds
        self.retry = settings.throttle_retry_seconds
        self.login_user = Limit("login.user", settings.login_rate_per_user, settings.login_rate_window_seconds)
        self.login_address = Limit("login.addr", settings.login_rate_per_address, settings.login_rate_window_seconds)
        self.bank_client = Limit("bank.client", settings.bank_rate_per_client, settings.bank_rate_window_seconds)
        self._skip_until = 0.0  # monotonic: while Redis is known to be down, do not wait for it again

    def key(self, limit: Limit, identity: str, now: float) -> str:
        # Hashed: identities are caller-supplied text (a username), and keys must stay short and printable.
        digest = hashlib.sha256(identity.encode()).hexdigest()[:24]
        return f"{self.prefix}:{limit.name}:{limit.window}:{int(now // limit.window)}:{digest}"

    async def hit(self, code: str, checks: Sequence[tuple[Limit, str]]) -> None:
        """Count one request against every (limit, identity); `Throttled` (429) if any is over its limit."""
        if self.redis is None or time.monotonic() < self._skip_until:
            return
        now = self.clock()
        try:
            async with asyncio.timeout(self.timeout):
                pipe = self.redis.pipeline(transaction=False)
                for limit, identity in checks:
                    pipe.eval(_INCR, 1, self.key(limit, identity, now), str(2 * limit.window))
                counts = await pipe.execute()
        except (RedisError, OSError, TimeoutError):
            self._skip_until = time.monotonic() + self.retry
            log.warning("throttle: redis unreachable, letting requests through for %s s", self.retry, exc_info=True)
            return
        for count, (limit, _) in zip(counts, checks, strict=True):
            if int(count) > limit.limit:
                window_end = (int(now // limit.window) + 1) * limit.window
                raise Throttled(code, limit, max(1, math.ceil(window_end - now)))

    async def aclose(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


def connect(settings: Settings) -> Throttle:
    """A throttle on its own Redis client, with the short timeouts a request path needs (the arq pool
    retries for seconds); connects lazily, so an unreachable Redis does not stop start-up."""
    if not settings.redis_url:
        return Throttle(None, settings)
    redis = Redis.from_url(settings.redis_url, socket_timeout=settings.throttle_redis_timeout_seconds,
                           socket_connect_timeout=settings.throttle_redis_timeout_seconds)
    return Throttle(redis, settings)
