"""The hot read path: three round trips per request on the pool's raw asyncpg connection.

1. `BEGIN READ ONLY; SET LOCAL fupin.scope = '…'; SET LOCAL statement_timeout = …` — one simple-protocol
   message, so row-level security sees the caller's scope for this transaction only (SET LOCAL, which
   Citus propagates; it takes no bind parameters, so the scope is validated by `checked_pattern`);
2. the query: a Core statement compiled once for asyncpg and run as a cached prepared statement;
3. `COMMIT` — before the response is built, so no transaction outlives the request's handler.

Rows come back as asyncpg records and become plain dicts shaped like the route's schema, which
`to_json` renders with the same serializer pydantic uses (Decimal as a string, aware datetimes as
RFC 3339 with `Z`), so the JSON equals the ORM path's byte for byte in content.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import asyncpg
import pydantic_core
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import greenlet_spawn

from fupin.areas.scope import checked_pattern

_DIALECT = asyncpg_dialect()


class Prepared:
    """A Core statement with named `bindparam`s, compiled once (on first use) to asyncpg SQL."""

    def __init__(self, stmt: ClauseElement) -> None:
        self._stmt = stmt
        self._sql = ""
        self._names: tuple[str, ...] = ()
        self._fixed: dict[str, Any] = {}

    def _compile(self) -> None:
        compiled = _compile(self._stmt)
        # constants written into the statement (e.g. `relation != '户主'`) are binds with a value
        self._fixed = {name: b.effective_value for name, b in compiled.binds.items() if not b.required}
        self._sql, self._names = str(compiled), tuple(compiled.positiontup or ())

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        if not self._sql:
            self._compile()
        return [params[name] if name in params else self._fixed[name] for name in self._names]

    async def fetch(self, conn: asyncpg.Connection, **params: Any) -> list[asyncpg.Record]:
        args = self.args(params)
        return list(await conn.fetch(self._sql, *args))

    async def fetchrow(self, conn: asyncpg.Connection, **params: Any) -> asyncpg.Record | None:
        args = self.args(params)
        return await conn.fetchrow(self._sql, *args)


class Variants:
    """Prepared statements of one query in a few shapes (which filters are present, which sort), each
    built by `build(*key)` and compiled on first use."""

    def __init__(self, build: Callable[..., ClauseElement]) -> None:
        self._build = build
        self._by_key: dict[tuple[Any, ...], Prepared] = {}

    def __call__(self, *key: Any) -> Prepared:
        prepared = self._by_key.get(key)
        if prepared is None:
            prepared = self._by_key[key] = Prepared(self._build(*key))
        return prepared


def _compile(stmt: ClauseElement, **kw: Any) -> SQLCompiler:
    return cast(SQLCompiler, stmt.compile(dialect=_DIALECT, **kw))


_COMPILED: dict[Any, SQLCompiler] = {}
_COMPILED_MAX = 500


async def fetch_statement(conn: asyncpg.Connection, stmt: ClauseElement) -> list[asyncpg.Record]:
    """Any Core/ORM select the services build (values inline), run on the raw connection: compiled once per
    shape through SQLAlchemy's cache key, like SQLAlchemy's own compiled cache. For the rarer filter
    combinations; the hottest shapes use `Prepared`, which skips building the statement per request."""
    key = stmt._generate_cache_key()
    if key is None:  # not cacheable: compile every time
        compiled = _compile(stmt)
        params = compiled.construct_params()
    else:
        cached = _COMPILED.get(key.key)
        if cached is None:
            if len(_COMPILED) >= _COMPILED_MAX:
                _COMPILED.clear()
            cached = _COMPILED[key.key] = _compile(stmt, cache_key=key)
        compiled = cached
        params = compiled.construct_params(extracted_parameters=key.bindparams)
    if compiled.post_compile_params:
        # `IN (…)` lists: one bind per element, spelled out for this call's values (SQLAlchemy's own step)
        expanded = compiled.construct_expanded_state(params)
        return list(await conn.fetch(expanded.statement, *expanded.positional_parameters))
    args = [params[name] for name in compiled.positiontup or ()]
    return list(await conn.fetch(str(compiled), *args))


class read_transaction:
    """A read-only transaction scoped to `scope` (an RLS pattern from `scope_pattern`) on a pooled
    connection; committed on exit, rolled back (or the connection discarded) on error. Database errors
    leave as `DBAPIError`, like the ORM path's, so the API answers them the same way (503 when the
    database is gone). A class rather than an `@asynccontextmanager`: it runs twice per hot request,
    and the generator machinery cost more than its body."""

    __slots__ = ("_begin", "_conn", "_engine", "_fairy")

    def __init__(self, engine: AsyncEngine, *, scope: str, timeout_ms: int) -> None:
        self._engine = engine
        self._begin = (f"BEGIN READ ONLY; SET LOCAL fupin.scope = '{checked_pattern(scope)}'; "
                       f"SET LOCAL statement_timeout = {int(timeout_ms)}")

    async def __aenter__(self) -> asyncpg.Connection:
        try:
            self._fairy = await self._engine.raw_connection()
        except Exception as error:  # a pool timeout stays what it is (503 service.busy)
            if _from_database(self._engine, error):
                raise _wrapped(error, self._begin) from error
            raise
        self._conn = conn = cast(asyncpg.Connection, self._fairy.driver_connection)
        try:
            await conn.execute(self._begin)
        except BaseException as error:
            await self._failed(error)
        return conn

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: Any) -> None:
        if exc is None:
            try:
                await self._conn.execute("COMMIT")
            except BaseException as error:
                await self._failed(error)
            await greenlet_spawn(self._fairy.close)
            return
        await self._failed(exc, reraise=False)

    async def _failed(self, error: BaseException, *, reraise: bool = True) -> None:
        """Give the connection back clean or discard it, then let `error` leave as the API expects it."""
        conn = self._conn
        await _discard_or_reset(self._fairy, conn, error)
        if _from_database(self._engine, error):
            raise _wrapped(error, self._begin, invalidated=conn.is_closed()) from error
        if reraise:
            raise error


def _from_database(engine: AsyncEngine, error: BaseException) -> bool:
    dbapi_error = engine.dialect.loaded_dbapi.Error
    return isinstance(error, asyncpg.PostgresError | asyncpg.InterfaceError | OSError | TimeoutError | dbapi_error)


def _wrapped(error: BaseException, statement: str, *, invalidated: bool = True) -> DBAPIError:
    return DBAPIError(statement, None, error, connection_invalidated=invalidated)


async def _discard_or_reset(fairy: Any, conn: asyncpg.Connection, error: BaseException) -> None:
    """Give a connection back clean, or throw it away: the pool's reset does not know about a
    transaction begun by hand, so an open one is rolled back here; a dead or cancelled connection is
    invalidated (the next checkout opens a new one)."""
    if isinstance(error, Exception) and not conn.is_closed():
        try:
            if conn.is_in_transaction():
                await conn.execute("ROLLBACK")
            await greenlet_spawn(fairy.close)
            return
        except Exception:  # the rollback failed too: the connection is unusable
            pass
    await greenlet_spawn(fairy.invalidate)


def record(row: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """`row` as a dict in the schema's field order (the JSON key order of the ORM path)."""
    return {name: row[name] for name in fields}


def to_json(value: Any) -> bytes:
    return pydantic_core.to_json(value)
