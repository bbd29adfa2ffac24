"""Users, password hashing (argon2) and short-lived HS256 access tokens."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.codes import level_of
from fupin.auth.cache import UserAuth, VerifiedTokens
from fupin.auth.models import User
from fupin.auth.principal import Principal
from fupin.auth.roles import Role
from fupin.errors import Conflict, DomainError, NotFound, Unauthorized
from fupin.settings import Settings

_hasher = PasswordHasher()
# Verified against when the username is unknown so timing does not reveal which usernames exist.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


# argon2 with argon2-cffi's defaults takes 64 MiB per hash for its duration: four logins at once put the API's
# peak RSS near 400 MiB. Hashes run on this pool of their own, so at most this many at a time (the rest wait
# in its queue, off the event loop and without holding the default executor's threads).
HASH_CONCURRENCY = 1
_T = TypeVar("_T")
_hashing = ThreadPoolExecutor(max_workers=HASH_CONCURRENCY, thread_name_prefix="argon2")


async def off_loop_hash(fn: Callable[..., _T], *args: str) -> _T:
    """`fn(*args)` (an argon2 hash or verification) on the hashing pool."""
    return await asyncio.get_running_loop().run_in_executor(_hashing, fn, *args)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@dataclass(frozen=True)
class LoginAttempt:
    """Who a refused login was for, for the denial audit: the user when the name exists, else only the name."""

    username: str
    user_id: uuid.UUID | None = None
    role: str = ""
    area_code: str | None = None


def _attempt(username: str, user: User | None) -> LoginAttempt:
    if user is None:
        return LoginAttempt(username)
    return LoginAttempt(username, user.id, user.role, user.area_code)


class BadCredentials(Unauthorized):
    """Wrong username or password; `locked_out` is true on the attempt that locked the account (for
    metrics only: the caller sees the same 401 either way)."""

    def __init__(self, *, locked_out: bool = False, attempt: LoginAttempt | None = None) -> None:
        super().__init__("auth.bad_credentials", "wrong username or password", "用户名或密码错误")
        self.locked_out = locked_out
        self.attempt = attempt


class LockedOut(DomainError):
    """Too many failed logins: the account is locked for a while (429 with Retry-After)."""

    def __init__(self, *, retry_after: int, attempt: LoginAttempt) -> None:
        super().__init__("auth.locked", "too many failed logins; try again later", "登录失败次数过多,请稍后再试",
                         status=429, extra={"retry_after": retry_after})
        self.attempt = attempt


def _bad_credentials(*, locked_out: bool = False, attempt: LoginAttempt | None = None) -> BadCredentials:
    return BadCredentials(locked_out=locked_out, attempt=attempt)


async def create_user(
    session: AsyncSession, *, username: str, password: str, role: Role, area_code: str, full_name: str = ""
) -> User:
    level_of(area_code)
    existing = await session.scalar(select(User.id).where(User.username == username))
    if existing is not None:
        raise Conflict("user.exists", f"user {username} exists", f"用户 {username} 已存在")
    user = User(
        username=username,
        password_hash=await off_loop_hash(hash_password, password),
        role=role.value,
        area_code=area_code,
        full_name=full_name,
    )
    session.add(user)
    await session.flush()
    return user


async def authenticate(session: AsyncSession, *, settings: Settings, username: str, password: str) -> User:
    """Check a password; after `login_max_failures` wrong tries the account locks for a while (429).

    Row-level security shows a login transaction exactly the named user's row (`fupin.login`), so the
    failure counter and lockout can be written before anyone is authenticated."""
    await session.execute(text("SELECT set_config('fupin.login', :u, true)"), {"u": username})
    user = await session.scalar(select(User).where(User.username == username).with_for_update())
    now = datetime.now(UTC)
    if user is None:
        with contextlib.suppress(VerificationError):
            await off_loop_hash(_hasher.verify, _DUMMY_HASH, password)
        raise _bad_credentials(attempt=_attempt(username, None))
    if user.locked_until is not None and user.locked_until > now:
        retry = int((user.locked_until - now).total_seconds()) + 1
        raise LockedOut(retry_after=retry, attempt=_attempt(username, user))
    try:
        # argon2 is deliberately slow (~0.1–0.5 s): off the event loop, or every other request waits.
        await off_loop_hash(_hasher.verify, user.password_hash, password)
    except (VerificationError, InvalidHashError):
        user.failed_logins += 1
        locked_out = user.failed_logins >= settings.login_max_failures
        if locked_out:
            user.locked_until = now + timedelta(seconds=settings.login_lockout_seconds)
            user.failed_logins = 0
        # The failure count must survive the error response, so the caller commits it.
        raise _bad_credentials(locked_out=locked_out, attempt=_attempt(username, user)) from None
    if not user.active:
        raise _bad_credentials(attempt=_attempt(username, user))
    user.failed_logins = 0
    user.locked_until = None
    return user


def issue_token(user: User, settings: Settings) -> str:
    return access_token(user.id, role=user.role, area_code=user.area_code, version=user.token_version,
                        settings=settings)


def access_token(user_id: uuid.UUID, *, role: str, area_code: str, version: int, settings: Settings) -> str:
    """A signed access token valid for `jwt_ttl_seconds`; role and area are informative (the user row decides)."""
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "role": role,
        "area": area_code,
        "ver": version,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(seconds=settings.jwt_ttl_seconds),
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def _invalid_token() -> Unauthorized:
    return Unauthorized("auth.invalid_token", "invalid or expired token", "令牌无效或已过期")


def decode_token(token: str, *, settings: Settings, verified: VerifiedTokens | None = None) -> tuple[uuid.UUID, Any]:
    """(user id, token version) of a valid, unexpired token; 401 otherwise. No database involved.
    With `verified`, a token already checked by this process is not checked again until it expires."""
    if verified is not None and (hit := verified.get(token)) is not None:
        return hit
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=["HS256"],
            options={"require": ["exp", "sub", "iat", "nbf"]},
        )
        user_id, version = uuid.UUID(str(claims["sub"])), claims.get("ver")
    except (jwt.PyJWTError, ValueError, KeyError):
        raise _invalid_token() from None
    if verified is not None:
        verified.put(token, float(claims["exp"]), user_id, version)
    return user_id, version


_USER_AUTH = text("SELECT username, role, area_code, active, token_version FROM fupin_user_auth(:id)")


async def load_auth(session: AsyncSession, user_id: uuid.UUID) -> UserAuth | None:
    """What a token is checked against, before any scope exists: app_user rows are visible to user
    administrators only, so this reads through the SECURITY DEFINER `fupin_user_auth` (no password hash)."""
    row = (await session.execute(_USER_AUTH, {"id": user_id})).first()
    return UserAuth(row.username, row.role, row.area_code, row.active, row.token_version) if row else None


def admit(user_id: uuid.UUID, user: UserAuth | None, version: Any) -> Principal:
    """Role and area come from the user row, not the claims; a deactivated user or an older token
    version (password changed) is refused."""
    if user is None or not user.active or user.token_version != version:
        raise _invalid_token()
    return Principal(user_id=user_id, username=user.username, role=Role(user.role), area_code=user.area_code)


async def principal_from_token(session: AsyncSession, *, settings: Settings, token: str) -> Principal:
    """The caller, checked against the database now (no cache)."""
    user_id, version = decode_token(token, settings=settings)
    return admit(user_id, await load_auth(session, user_id), version)


async def add_user(
    session: AsyncSession, *, principal: Principal, username: str, password: str, role: Role, area_code: str,
    full_name: str = "",
) -> User:
    """An admin creates users only inside its own area, and never machine or system principals."""
    from fupin.areas.scope import visible
    from fupin.audit import service as audit

    if role in (Role.system, Role.bank):
        raise Conflict("user.role_not_assignable", f"role {role} is not for people", f"角色 {role} 不能分配给用户")
    if not visible(principal, area_code):
        # Another area answers as if it did not exist, like every other foreign object (README, Access).
        raise NotFound("user.area_outside_scope", "no such area in your scope", "辖区内无此区划")
    user = await create_user(
        session, username=username, password=password, role=role, area_code=area_code, full_name=full_name
    )
    await audit.record(
        session, principal, action="user.create", entity="user", entity_id=user.id, area_code=area_code,
        after={"username": username, "role": role.value, "area_code": area_code},
    )
    return user


async def get_user(session: AsyncSession, *, principal: Principal, user_id: uuid.UUID) -> User:
    from fupin.areas.scope import visible
    from fupin.errors import not_found

    user = await session.get(User, user_id)
    if user is None or not visible(principal, user.area_code):
        raise not_found("user")
    return user


async def update_user(
    session: AsyncSession, *, principal: Principal, user_id: uuid.UUID, active: bool | None, password: str | None,
    full_name: str | None,
) -> User:
    from fupin.audit import service as audit
    from fupin.auth import sessions

    user = await get_user(session, principal=principal, user_id=user_id)
    before = {"active": user.active, "full_name": user.full_name}
    if active is not None and active != user.active:
        user.active = active
        user.token_version += 1
        if not active:
            await sessions.revoke_user(session, user_id=user.id, reason=sessions.USER_DISABLED)
    if password is not None:
        user.password_hash = await off_loop_hash(hash_password, password)
        user.token_version += 1
        await sessions.revoke_user(session, user_id=user.id, reason=sessions.PASSWORD_CHANGED)
    if full_name is not None:
        user.full_name = full_name
    await session.flush()
    await audit.record(
        session, principal, action="user.update", entity="user", entity_id=user.id, area_code=user.area_code,
        before=before, after={"active": user.active, "full_name": user.full_name, "password_changed": password is not None},
    )
    return user


async def list_users(session: AsyncSession, *, principal: Principal, limit: int, cursor: str | None,
                     total: bool = False) -> tuple[list[User], str | None, int | None]:
    from fupin.areas.scope import scoped
    from fupin.paging import after, count, page

    users = scoped(select(User), principal, User.area_code)
    rows, next_cursor = page((await session.scalars(after(users, (User.username,), cursor, limit))).all(), limit,
                             lambda u: (u.username,))
    return rows, next_cursor, (await count(session, users) if total else None)
