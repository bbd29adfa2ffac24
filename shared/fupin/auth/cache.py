"""What a token is checked against, cached per user for a few seconds (`token_cache_seconds`).

A token carries the user's `token_version`; deactivating a user or changing a password bumps it. The
API used to read the user row on every request; it now trusts a cached row for `ttl` seconds, so a
revocation made by another process takes effect within that delay (the process that made it forgets
the row at once). 0 disables the cache.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

MAX_USERS = 50_000  # far above the active users of a province; past it the cache starts over
MAX_TOKENS = 100_000  # a few tokens per active user; past it the cache starts over


@dataclass(frozen=True)
class UserAuth:
    username: str
    role: str
    area_code: str
    active: bool
    token_version: int


class AuthCache:
    def __init__(self, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self.clock = clock
        self._rows: dict[uuid.UUID, tuple[float, UserAuth]] = {}

    def get(self, user_id: uuid.UUID) -> UserAuth | None:
        hit = self._rows.get(user_id)
        if hit is None:
            return None
        if hit[0] <= self.clock():
            del self._rows[user_id]
            return None
        return hit[1]

    def put(self, user_id: uuid.UUID, row: UserAuth) -> None:
        if self.ttl <= 0:
            return
        if len(self._rows) >= MAX_USERS:
            self._rows.clear()
        self._rows[user_id] = (self.clock() + self.ttl, row)

    def forget(self, user_id: uuid.UUID) -> None:
        self._rows.pop(user_id, None)


class VerifiedTokens:
    """Tokens whose signature and claims were checked once, with what they said (user id, version) and
    when they expire. Checking an HS256 token costs about as much CPU as the rest of a hot read; a
    token never changes, so a second check of the same string can only repeat the first — except for
    expiry, which is compared on every hit. Revocation is not the business of this cache: the
    version is compared with the user row (`AuthCache`) on every request."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # wall time: `exp` is a Unix time
        self._claims: dict[str, tuple[float, uuid.UUID, object]] = {}

    def get(self, token: str) -> tuple[uuid.UUID, object] | None:
        hit = self._claims.get(token)
        if hit is None:
            return None
        if hit[0] <= self.clock():
            del self._claims[token]
            return None
        return hit[1], hit[2]

    def put(self, token: str, expires_at: float, user_id: uuid.UUID, version: object) -> None:
        if len(self._claims) >= MAX_TOKENS:
            self._claims.clear()
        self._claims[token] = (expires_at, user_id, version)
