"""Engines, sessions, and the per-transaction area scope that row-level security reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import TextClause, event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

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


async def set_area_scope(session: AsyncSession, scope_prefix: str, *, user_scope: str | None = None) -> None:
    """Set the RLS scope for the current transaction only, in one statement (see `scope_statement`).

    `scope_prefix` is a LIKE pattern: the caller's area code cut to its level width plus '%',
    or '%' for system actors. An unset scope matches nothing (deny by default). A scope inside one county
    also routes the session's ORM statements to that county (`_route_to_county`). Users (`app_user`) have
    their own setting, `fupin.user_scope`: `user_scope` when given (the API gives user administrators
    their area), else every area for system actors and none otherwise.
    """
    await session.execute(scope_statement(scope_prefix))
    users = (scope_prefix if scope_prefix == ALL_AREAS else "") if user_scope is None else user_scope
    await session.execute(text(f"SET LOCAL fupin.user_scope = '{checked_pattern(users) if users else ''}'"))
    session.info[_COUNTY] = county_of_scope(scope_prefix)


_COUNTY = "fupin.county"


def route_to_county(session: AsyncSession, area_code: str) -> None:
    """Route the session's ORM statements to the county of `area_code` (when it lies inside one) without
    narrowing its RLS scope: a county job scoped '%' still touches only its county's rows, and says so, so
    that on Citus it runs on the one worker holding them."""
    from fupin.areas.codes import prefix_of

    session.info[_COUNTY] = county_of_scope(prefix_of(area_code) + "%") if area_code else None


def county_of_scope(scope_prefix: str) -> str | None:
    """The one county a scope pattern lies in, or None for a city, province or the whole country."""
    digits = scope_prefix.rstrip("%")
    return digits[:6] if len(digits) >= 6 else None


# Lambdas, so SQLAlchemy caches the criteria per entity and binds the county as a parameter.
def _by_county(county: str) -> Any:
    return lambda cls: cls.__table__.c.county == county


def _by_county_code(county: str) -> Any:
    return lambda cls: cls.__table__.c.county_code == county


@event.listens_for(Session, "do_orm_execute")
def _route_to_county(state: ORMExecuteState) -> None:
    """ORM statements of a session scoped inside one county name that county for every county-distributed
    table they touch. RLS already hides every other county's rows, so the result is the same; but on Citus
    an equality on the distribution column routes the statement to the one worker holding the county (a
    lookup by id alone is sent to every shard, and refused outright with FOR UPDATE)."""
    county = state.session.info.get(_COUNTY)
    if county is None or not (state.is_select or state.is_update or state.is_delete):
        return
    from fupin.distribution import PLACEMENT, Distributed

    options = []
    for mapper in state.all_mappers:
        placement = PLACEMENT.get(mapper.local_table.name)  # type: ignore[attr-defined]
        if isinstance(placement, Distributed):
            criteria = _by_county_code(county) if placement.column == "county_code" else _by_county(county)
            options.append(with_loader_criteria(mapper.class_, criteria, include_aliases=True))
    if options:
        state.statement = state.statement.options(*options)


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession], *, scope: str = ALL_AREAS
) -> AsyncIterator[AsyncSession]:
    """One transaction: commit on success, roll back on error. Used by the worker and the CLI."""
    async with sessionmaker() as session, session.begin():
        await set_area_scope(session, scope)
        yield session
