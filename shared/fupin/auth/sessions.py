"""Login sessions: a short access token plus a rotating, one-time refresh token (issue 14).

A refresh token is `<session id>.<secret>`. The session row (`refresh_session`) keeps only the SHA-256 of
the current secret. `/auth/refresh` trades a token for a new access token and a new refresh token and
replaces the stored hash, so every secret works exactly once. A secret that names a live session but no
longer matches its hash was already used: someone holds a copy (a stolen token, or a client that retried
without keeping the answer), and since we cannot tell the thief from the owner the session is revoked
for both (OAuth 2.0 Security BCP, RFC 9700 §4.14.2: refresh token rotation with reuse detection).

A session also ends when its user's password changes or the user is deactivated (`revoke_user`, called by
the user update in the same transaction, and the token_version kept in the row), on logout, after
`refresh_ttl_seconds` without a refresh and `refresh_session_max_seconds` after login.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.scope import scope_pattern
from fupin.auth import service
from fupin.auth.models import RefreshSession, User
from fupin.auth.principal import Principal
from fupin.db import set_area_scope
from fupin.errors import Unauthorized
from fupin.settings import Settings

# Why a session ended; kept in the row for the user's administrators and the audit.
LOGOUT = "logout"
REUSED = "reused"
PASSWORD_CHANGED = "password_changed"
USER_DISABLED = "user_disabled"
USER_CHANGED = "user_changed"


@dataclass(frozen=True)
class Issued:
    """What a login or a refresh hands out."""

    access_token: str
    refresh_token: str
    refresh_expires_in: int


class RefreshReused(Unauthorized):
    """A refresh token was presented a second time: the session is revoked, the caller must log in again.
    Raised after the revocation was written; the caller commits it before answering."""

    def __init__(self) -> None:
        super().__init__("auth.refresh_reused", "refresh token already used; the session is revoked, log in again",
                         "刷新令牌已被使用过,该登录会话已注销,请重新登录")


def _invalid_refresh() -> Unauthorized:
    return Unauthorized("auth.invalid_refresh_token", "invalid, expired or revoked refresh token",
                        "刷新令牌无效、已过期或已注销")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _parse(token: str) -> tuple[uuid.UUID, str] | None:
    sid, _, secret = token.partition(".")
    try:
        return uuid.UUID(sid), secret
    except ValueError:
        return None


def _expiry(row: RefreshSession, now: datetime, settings: Settings) -> datetime:
    return min(now + timedelta(seconds=settings.refresh_ttl_seconds),
               row.created_at + timedelta(seconds=settings.refresh_session_max_seconds))


def _issue(row: RefreshSession, *, role: str, area_code: str, version: int, settings: Settings,
           now: datetime) -> Issued:
    secret = secrets.token_urlsafe(32)
    row.token_hash = _digest(secret)
    row.expires_at = _expiry(row, now, settings)
    return Issued(
        access_token=service.access_token(row.user_id, role=role, area_code=area_code, version=version,
                                          settings=settings),
        refresh_token=f"{row.id}.{secret}",
        refresh_expires_in=int((row.expires_at - now).total_seconds()),
    )


async def start(session: AsyncSession, *, user: User, settings: Settings) -> Issued:
    """After a successful login: a new session (refresh-token family) for `user`. The transaction takes the
    user's own scope first, as any request of that user would, so the row is written under RLS; the user's
    sessions that expired are removed on the way (the table holds live sessions, not history)."""
    await session.flush()  # the login's own writes to app_user, under the login setting
    await set_area_scope(session, scope_pattern(_principal(user.id, user.username, user.role, user.area_code)))
    now = datetime.now(UTC)
    await session.execute(delete(RefreshSession).where(RefreshSession.user_id == user.id,
                                                       RefreshSession.expires_at < now))
    row = RefreshSession(id=uuid.uuid4(), user_id=user.id, area_code=user.area_code, generation=0,
                         token_version=user.token_version, created_at=now)
    issued = _issue(row, role=user.role, area_code=user.area_code, version=user.token_version, settings=settings,
                    now=now)
    session.add(row)
    await session.flush()
    return issued


def _principal(user_id: uuid.UUID, username: str, role: str, area_code: str) -> Principal:
    from fupin.auth.roles import Role

    return Principal(user_id=user_id, username=username, role=Role(role), area_code=area_code)


async def _presented(session: AsyncSession, token: str) -> tuple[RefreshSession, str] | None:
    """The session a token names, locked, with the token's secret; None when the token names none. Before
    any scope exists, RLS shows this transaction exactly the named row (`fupin.refresh_session`)."""
    parsed = _parse(token)
    if parsed is None:
        return None
    sid, secret = parsed
    await session.execute(text("SELECT set_config('fupin.refresh_session', :s, true)"), {"s": str(sid)})
    row = await session.scalar(select(RefreshSession).where(RefreshSession.id == sid).with_for_update())
    return (row, secret) if row is not None else None


def _revoke(row: RefreshSession, reason: str, now: datetime) -> None:
    row.revoked_at = now
    row.revoked_reason = reason


async def refresh(session: AsyncSession, *, token: str, settings: Settings) -> Issued:
    """Trade a refresh token for a new access token and a new refresh token (the old one is spent).

    401 `auth.invalid_refresh_token` for an unknown, expired or revoked token or a user who was deactivated
    or whose password changed; 401 `auth.refresh_reused` when the token was already used — the session is
    then revoked, and that revocation must be committed although the request fails."""
    found = await _presented(session, token)
    if found is None:
        raise _invalid_refresh()
    row, secret = found
    now = datetime.now(UTC)
    if row.revoked_at is not None or row.expires_at <= now:
        raise _invalid_refresh()
    if not hmac.compare_digest(row.token_hash, _digest(secret)):
        _revoke(row, REUSED, now)
        await session.flush()
        raise RefreshReused()
    user = await service.load_auth(session, row.user_id)
    if user is None or not user.active or user.token_version != row.token_version:
        _revoke(row, USER_CHANGED, now)
        await session.flush()
        raise _invalid_refresh()
    row.generation += 1
    row.last_used_at = now
    issued = _issue(row, role=user.role, area_code=user.area_code, version=user.token_version, settings=settings,
                    now=now)
    await session.flush()
    return issued


async def logout(session: AsyncSession, *, token: str) -> bool:
    """End the session a refresh token belongs to (any of its generations: a client that lost track of the
    latest token can still log out). The access tokens already issued stay valid until they expire
    (`jwt_ttl_seconds`). True when a live session was ended."""
    found = await _presented(session, token)
    if found is None or found[0].revoked_at is not None:
        return False
    _revoke(found[0], LOGOUT, datetime.now(UTC))
    await session.flush()
    return True


async def revoke_user(session: AsyncSession, *, user_id: uuid.UUID, reason: str) -> int:
    """End every live session of a user (password changed, user deactivated); the caller's scope must cover
    the user's area, which a user administrator's does. Returns how many sessions ended."""
    result = await session.execute(
        update(RefreshSession)
        .where(RefreshSession.user_id == user_id, RefreshSession.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC), revoked_reason=reason)
    )
    return int(getattr(result, "rowcount", 0) or 0)
