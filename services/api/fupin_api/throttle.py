"""Fixed-window request throttles in Redis: logins per username and per client address, bank routes per
bank client, and failed bank signatures per client address and per claimed client. Answers 429
problem+json with `Retry-After` and a stable code.

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

from fastapi import Request
from redis.asyncio import Redis
from redis.exceptions import RedisError

from fupin.errors import DomainError
from fupin.settings import Settings
from fupin_api.denials import client_address

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
        self.bank_fail_address = Limit("bank.fail.addr", settings.bank_failures_per_address,
                                       settings.bank_failure_window_seconds)
        self.bank_fail_client = Limit("bank.fail.client", settings.bank_failures_per_client,
                                      settings.bank_failure_window_seconds)
        self._skip_until = 0.0  # monotonic: while Redis is known to be down, do not wait for it again

    def key(self, limit: Limit, identity: str, now: float) -> str:
        # Hashed: identities are caller-supplied text (a username), and keys must stay short and printable.
        digest = hashlib.sha256(identity.encode()).hexdigest()[:24]
        return f"{self.prefix}:{limit.name}:{limit.window}:{int(now // limit.window)}:{digest}"

    async def hit(self, code: str, checks: Sequence[tuple[Limit, str]]) -> None:
        """Count one request against every (limit, identity); `Throttled` (429) if any is over its limit."""
        now = self.clock()
        counts = await self._counts(checks, now, count=True)
        for n, (limit, _) in zip(counts, checks, strict=True):
            if n > limit.limit:
                raise self._throttled(code, limit, now)

    async def refuse_spent(self, code: str, checks: Sequence[tuple[Limit, str]]) -> None:
        """`Throttled` (429) if any (limit, identity) has already used its whole allowance in this window;
        counts nothing (for failures, counted by `count` once they happened)."""
        now = self.clock()
        counts = await self._counts(checks, now, count=False)
        for n, (limit, _) in zip(counts, checks, strict=True):
            if n >= limit.limit:
                raise self._throttled(code, limit, now)

    async def count(self, checks: Sequence[tuple[Limit, str]]) -> None:
        """Count one event (a failure) against every (limit, identity), refusing nothing."""
        await self._counts(checks, self.clock(), count=True)

    def _throttled(self, code: str, limit: Limit, now: float) -> Throttled:
        window_end = (int(now // limit.window) + 1) * limit.window
        return Throttled(code, limit, max(1, math.ceil(window_end - now)))

    async def _counts(self, checks: Sequence[tuple[Limit, str]], now: float, *, count: bool) -> list[int]:
        """The counters of `checks` in this window (after counting one more when `count`), in one round trip;
        zeros when Redis is down (fail open)."""
        if self.redis is None or time.monotonic() < self._skip_until:
            return [0] * len(checks)
        try:
            async with asyncio.timeout(self.timeout):
                pipe = self.redis.pipeline(transaction=False)
                for limit, identity in checks:
                    if count:
                        pipe.eval(_INCR, 1, self.key(limit, identity, now), str(2 * limit.window))
                    else:
                        pipe.get(self.key(limit, identity, now))
                return [int(n or 0) for n in await pipe.execute()]
        except (RedisError, OSError, TimeoutError):
            self._skip_until = time.monotonic() + self.retry
            log.warning("throttle: redis unreachable, letting requests through for %s s", self.retry, exc_info=True)
            return [0] * len(checks)

    async def aclose(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


# Refusals of a signed bank request that an attacker guessing signatures or replaying old ones produces.
BANK_SIGNATURE_FAILURES = frozenset({"bank.bad_signature", "bank.stale_timestamp"})


def bank_failure_checks(throttle: Throttle, request: Request) -> list[tuple[Limit, str]]:
    """The failed-signature counters a signed request answers to: its client address and, when it names
    one, the client id it claims (verified or not: failures are what is counted)."""
    checks = [(throttle.bank_fail_address, client_address(request) or "unknown")]
    if claimed := request.headers.get("x-fupin-client"):
        checks.append((throttle.bank_fail_client, claimed))
    return checks


async def refuse_failed_signers(request: Request) -> None:
    """Before a signature is checked: 429 `bank.throttled` for an address, or a claimed client, that has
    failed as many signatures as its window allows, so that guessing cannot go on at request speed."""
    throttle: Throttle = request.app.state.throttle
    await throttle.refuse_spent("bank.throttled", bank_failure_checks(throttle, request))


async def count_refusal(request: Request, exc: DomainError) -> None:
    """Called for every refusal answered (fupin_api.problems): counts a failed bank signature."""
    throttle: Throttle | None = getattr(request.app.state, "throttle", None)
    if throttle is not None and exc.status == 401 and exc.code in BANK_SIGNATURE_FAILURES:
        await throttle.count(bank_failure_checks(throttle, request))


def connect(settings: Settings) -> Throttle:
    """A throttle on its own Redis client, with the short timeouts a request path needs (the arq pool
    retries for seconds); connects lazily, so an unreachable Redis does not stop start-up."""
    if not settings.redis_url:
        return Throttle(None, settings)
    redis = Redis.from_url(settings.redis_url, socket_timeout=settings.throttle_redis_timeout_seconds,
                           socket_connect_timeout=settings.throttle_redis_timeout_seconds)
    return Throttle(redis, settings)
