"""Engines, sessions, and the per-transaction area scope that row-level security reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import TextClause, event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from fupin.areas.scope import checked_pattern
from fupin.settings import Settings

ALL_AREAS = "%"


def owner_url(settings: Settings) -> str:
    return settings.database_url


def app_url(settings: Settings) -> str:
    """The non-owner role's URL: RLS is bypassed by table owners, so the app must not be one."""
    if settings.app_database_url:
        return settings.app_database_url
    if not settings.database_url:
        raise RuntimeError("set FUPIN_APP_DATABASE_URL (API and worker) or FUPIN_DATABASE_URL (development)")
    url = make_url(settings.database_url).set(username=settings.db_app_role)
    url = url.set(password=settings.db_app_password or None)
    return url.render_as_string(hide_password=False)


def make_engine(
    url: str, *, name: str, pool_size: int = 10, pool_timeout: float = 5.0, statement_timeout_ms: int | None = None
) -> AsyncEngine:
    """No `pool_pre_ping`: a ping is a round trip on every checkout (three per request with the ORM).

    Instead a connection whose socket the server closed (a restart, a terminated backend) is noticed
    at checkout without a round trip and replaced; one that dies silently fails its request, which
    answers 503 with Retry-After, and is then discarded together with every connection older than it
    (SQLAlchemy's disconnect handling; `fupin.fastread` does the same for the raw hot path).

    `statement_timeout_ms` is set once per connection (the API's), so a request's transaction needs no
    statement of its own for it: the area scope is then its only per-transaction setting."""
    server_settings = {"application_name": name, "timezone": "UTC"}
    if statement_timeout_ms is not None:
        server_settings["statement_timeout"] = str(int(statement_timeout_ms))
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout,
        connect_args={"server_settings": server_settings},
    )
    event.listen(engine.sync_engine, "checkout", _refuse_closed)
    return engine


def _refuse_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    # The pool retries the checkout with a fresh connection when a listener raises DisconnectionError.
    if dbapi_connection.driver_connection.is_closed():
        raise exc.DisconnectionError("connection closed by the server")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def scope_statement(scope_prefix: str) -> TextClause:
    """`SET LOCAL fupin.scope = '…'`: the RLS scope for the current transaction only.

    SET LOCAL rather than `set_config(…, true)`: on a Citus coordinator (with
    `citus.propagate_set_commands = 'local'`, set by `fupin distribute`) a SET LOCAL is sent along to every
    worker the transaction touches, so the shards' policies see the same scope; `set_config` stays on the
    coordinator. SET takes no bind parameters, so the pattern is spliced in after `checked_pattern` proved
    it is digits and one trailing '%'."""
    return text(f"SET LOCAL fupin.scope = '{checked_pattern(scope_prefix)}'")


async def set_area_scope(session: AsyncSession, scope_prefix: str) -> None:
    """Set the RLS scope for the current transaction only, in one statement (see `scope_statement`).

    `scope_prefix` is a LIKE pattern: the caller's area code cut to its level width plus '%',
    or '%' for system actors. An unset scope matches nothing (deny by default).
    """
    await session.execute(scope_statement(scope_prefix))


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession], *, scope: str = ALL_AREAS
) -> AsyncIterator[AsyncSession]:
    """One transaction: commit on success, roll back on error. Used by the worker and the CLI."""
    async with sessionmaker() as session, session.begin():
        await set_area_scope(session, scope)
        yield session
