"""Where every table lives on a Citus cluster, and the step that puts it there (`fupin distribute`).

One schema, two deployments: the Alembic migrations build the same tables on plain PostgreSQL and on a
Citus coordinator; in distributed mode (`FUPIN_DISTRIBUTED=1` for `fupin migrate`, or `fupin distribute`
after it) this module then, reading the live catalog rather than a second copy of the schema:

- checks that every distributed table carries its distribution column, `county` (the 6-digit county prefix
  of the row's `area_code`; Citus refuses a generated column there, so the migrations add it as a plain
  NOT NULL column and every insert fills it — ORM and Core inserts through `fupin.base`, raw SQL itself);
- adds that column to every primary key, unique constraint and unique index that lacks it, and to every
  foreign key between distributed tables (Citus refuses keys without the distribution column, and a
  co-located foreign key is checked on the one worker that holds both rows);
- drops the triggers on distributed and reference tables (Citus refuses them; what they guarded is
  enforced without them, see `TRIGGER_REPLACEMENTS`);
- makes the small shared tables reference tables (a copy on every node) and distributes the area-owned
  ones by county, all co-located with `household`, so one county's rows of every table share a worker.

The step is idempotent and runs again after later migrations: tables already placed are skipped, so a
table a later revision adds is placed by the next run — provided it is declared in `PLACEMENT`, which
`tests/platform/test_distribution.py` enforces on plain PostgreSQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

COUNTY = "county"  # varchar(6); `county_code` already names 12-digit county area codes in several domains
ANCHOR = "household"  # every distributed table is co-located with the household roll


@dataclass(frozen=True)
class Distributed:
    """Distributed by `column` (6-digit county code); `source` is the column it is the prefix of, or
    None when the table already carries a 6-digit county (the audit chains)."""

    column: str = COUNTY
    source: str | None = "area_code"


@dataclass(frozen=True)
class Reference:
    """Replicated to every node; `why` says why it is not area-owned data (or why it may not be yet)."""

    why: str


Placement = Distributed | Reference

_DIST = Distributed()
_DIRECTORY = Reference("directory read by every county's requests; small, changes rarely")
_POLICY = Reference("per-area policy or setting: a handful of rows per area, read by every job and request")
_HELPERS = Reference("who helps where: helping units and their cadres work across county lines")
_REGISTRY = Reference("cross-county registry: its unique key spans counties")
_LEDGER = Reference(
    "ledger tables have no county of their own (an entry may move money between counties); until entries "
    "and lines carry the county of their accounts they are reference tables, so the balance check and the "
    "balance update stay one statement in fupin_ledger_post_lines"
)

PLACEMENT: dict[str, Placement] = {
    # directory, roles, calendar, queue registry
    "area": _DIRECTORY,
    "app_user": _DIRECTORY,
    "refresh_session": Reference("login sessions follow their user (app_user, a reference table); a refresh "
                                 "is authenticated before any county is known"),
    "loan_holiday": Reference("calendar"),
    "loan_holiday_year": Reference("calendar"),
    "bank_client": Reference("banks serve many counties; their keys are checked on every posting"),
    "bank_client_secret": Reference("banks serve many counties"),
    "job_run": _REGISTRY,
    "job_progress": Reference("one row per running job, keyed by the job key, read by the platform dashboard"),
    # policies and settings
    "pairing_setting": _POLICY,
    "repayment_policy": _POLICY,
    "subsidy_policy": _POLICY,
    "monitoring_policy": _POLICY,
    "loan_product_rule": _POLICY,
    "project_setting": _POLICY,
    # helping units and cadres
    "helping_unit": _HELPERS,
    "cadre": _HELPERS,
    "village_assignment": _HELPERS,
    "work_team": _HELPERS,
    # ledger
    "ledger_account": _LEDGER,
    "journal_entry": _LEDGER,
    "journal_line": _LEDGER,
    # area-owned data, distributed by county and co-located
    "household": _DIST,
    "household_member": _DIST,
    "household_event": _DIST,
    "loan": _DIST,
    "loan_repayment": _DIST,
    "loan_application": _DIST,
    "loan_application_step": _DIST,
    "loan_certificate": _DIST,
    "loan_notification": _DIST,
    "loan_quota": _DIST,
    "loan_quota_confirmed": _DIST,
    "loan_township_readiness": _DIST,
    "bank_loan_event": _DIST,
    "bank_batch": _DIST,
    "bank_batch_line": _DIST,
    "bank_batch_event": _DIST,
    "bank_batch_result": _DIST,
    "repayment_check": _DIST,
    "repayment_check_loan": _DIST,
    "quota_proposal": _DIST,
    "subsidy_run": _DIST,
    "subsidy_payout": _DIST,
    "dividend_pool": _DIST,
    "dividend_run": _DIST,
    "dividend_holding": _DIST,
    "dividend_payout": _DIST,
    "help_plan": _DIST,
    "help_measure": _DIST,
    "pairing": _DIST,
    "visit": _DIST,
    "project": _DIST,
    "project_area": _DIST,
    "project_beneficiary": _DIST,
    "project_bid": _DIST,
    "project_budget": _DIST,
    "project_fund": _DIST,
    "project_notice": _DIST,
    "project_progress": _DIST,
    "project_transition": _DIST,
    "screening": _DIST,
    "screening_row": _DIST,
    "insurance_policy": _DIST,
    "insurance_claim": _DIST,
    "insurance_claim_bill": _DIST,
    "monitored_household": _DIST,
    "monitored_person": _DIST,
    "monitoring_measure": _DIST,
    "monitoring_step": _DIST,
    "monitoring_warning": _DIST,
    "audit_event": Distributed(column="county_code", source=None),
    "audit_chain_head": Distributed(column="county_code", source=None),
    "audit_checkpoint": Distributed(column="county_code", source=None),
    "access_denial": Distributed(column="county_code", source=None),
    "document": _DIST,
    "idempotency_key": _DIST,
    "archive_requirement": _POLICY,
    "village_location": _DIRECTORY,
}

# What each dropped trigger guarded, and what guards it on the cluster.
TRIGGER_REPLACEMENTS = {
    "*_append_only": "the app role holds no UPDATE/DELETE/TRUNCATE on the table (REVOKE in the migrations)",
    "audit_event_seal_only": "the app role may UPDATE only the chain columns (column GRANT), and the policy "
    "audit_event_seal_once lets it update only unsealed rows",
}

AREA_COLUMNS = ("area_code", COUNTY)


def unclassified(tables: dict[str, set[str]]) -> list[str]:
    """Tables (name → columns) that `PLACEMENT` does not place."""
    return sorted(t for t in tables if t not in PLACEMENT)


def misplaced(tables: dict[str, set[str]]) -> list[str]:
    """Distributed tables without their distribution column (a migration must add it, see citus0100)."""
    return sorted(
        t for t, cols in tables.items()
        if isinstance(p := PLACEMENT.get(t), Distributed) and p.column not in cols
    )


async def public_tables(conn: AsyncConnection) -> dict[str, set[str]]:
    rows = await conn.execute(text(
        "SELECT c.relname, array_agg(a.attname::text) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public' "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE c.relkind IN ('r', 'p') AND c.relname <> 'alembic_version' GROUP BY c.relname"
    ))
    return {name: set(cols) for name, cols in rows}


@dataclass
class _ForeignKey:
    table: str
    name: str
    definition: str
    target: str


async def _placed(conn: AsyncConnection) -> set[str]:
    rows = await conn.execute(text("SELECT logicalrelid::regclass::text FROM pg_dist_partition"))
    return {r[0] for r in rows}


async def _foreign_keys(conn: AsyncConnection, tables: set[str]) -> list[_ForeignKey]:
    rows = await conn.execute(text(
        "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid), c.confrelid::regclass::text "
        "FROM pg_constraint c WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace"
    ))
    return [_ForeignKey(*r) for r in rows if r[0] in tables or r[3] in tables]


def _with_county_fk(definition: str, column: str, ref_column: str) -> str:
    """`FOREIGN KEY (a) REFERENCES t(b) …` → `FOREIGN KEY (a, county) REFERENCES t(b, county) …`."""
    m = re.match(r"FOREIGN KEY \(([^)]*)\) REFERENCES ([\w.\"]+)\(([^)]*)\)(.*)", definition, re.S)
    if m is None:
        raise ValueError(f"unexpected foreign key definition: {definition}")
    cols, target, refcols, rest = m.groups()
    return f"FOREIGN KEY ({cols}, {column}) REFERENCES {target}({refcols}, {ref_column}){rest}"


def _with_county_index(definition: str, column: str) -> str:
    """A unique index's definition with the county appended to its key columns."""
    m = re.match(r"(CREATE UNIQUE INDEX \S+ ON \S+ USING \w+ \()([^)]*)(\).*)", definition, re.S)
    if m is None:
        raise ValueError(f"unexpected index definition: {definition}")
    return f"{m.group(1)}{m.group(2)}, {column}{m.group(3)}"


def _column(table: str) -> str:
    placement = PLACEMENT[table]
    assert isinstance(placement, Distributed)
    return placement.column


async def _run(conn: AsyncConnection, sql: str, log: list[str]) -> None:
    log.append(sql)
    await conn.execute(text(sql))


async def distribute(url: str) -> list[str]:
    """Place every table (see the module docstring). Returns the statements it ran."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    log: list[str] = []
    try:
        async with engine.connect() as conn:
            await _distribute(conn, log)
    finally:
        await engine.dispose()
    return log


async def _distribute(conn: AsyncConnection, log: list[str]) -> None:
    if not await conn.scalar(text("SELECT count(*) FROM pg_extension WHERE extname = 'citus'")):
        raise RuntimeError("the citus extension is not installed in this database: not a Citus coordinator")
    tables = await public_tables(conn)
    if missing := unclassified(tables):
        raise RuntimeError(f"tables not placed in fupin.distribution.PLACEMENT: {', '.join(missing)}")
    if wrong := misplaced(tables):
        raise RuntimeError(f"distributed tables without their county source column: {', '.join(wrong)}")
    db = await conn.scalar(text("SELECT current_database()"))
    # The RLS scope is set with SET LOCAL (fupin.db.set_area_scope); this makes Citus send it to the workers.
    await _run(conn, f'ALTER DATABASE "{db}" SET citus.propagate_set_commands TO \'local\'', log)
    # A join of two distributed tables that does not equate their county (household ⋈ member on the id
    # alone) is refused unless Citus may repartition it: correct, but sent to every worker. Queries on a
    # hot path equate the county as well (SCALING.md, "not done yet").
    await _run(conn, f'ALTER DATABASE "{db}" SET citus.enable_repartition_joins TO on', log)
    # A transaction that wrote to several shards over parallel connections may not then write a reference
    # table (the ledger, job runs) — "cannot modify table … because there was a parallel operation". One
    # connection per worker keeps a county job's transaction valid; single-county statements are unaffected.
    await _run(conn, f'ALTER DATABASE "{db}" SET citus.multi_shard_modify_mode TO \'sequential\'', log)

    placed = await _placed(conn)
    todo = {t for t in tables if t not in placed}
    if not todo:
        return
    dist = {t for t in todo if isinstance(PLACEMENT[t], Distributed)}
    refs = todo - dist
    all_dist = {t for t in tables if isinstance(PLACEMENT[t], Distributed)}

    # 1. Foreign keys off, to be put back once both ends are placed.
    fks = await _foreign_keys(conn, todo)
    for fk in fks:
        await _run(conn, f'ALTER TABLE {fk.table} DROP CONSTRAINT "{fk.name}"', log)

    # 2. Triggers off (refused by Citus; see TRIGGER_REPLACEMENTS).
    triggers = await conn.execute(text(
        "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal"
    ))
    for table, name in triggers.all():
        if table in todo:
            await _run(conn, f'DROP TRIGGER "{name}" ON {table}', log)
    if "audit_event" in dist:
        # What the seal-only trigger refused the app role: changing a row that is already sealed.
        await _run(conn, "CREATE POLICY audit_event_seal_once ON audit_event AS RESTRICTIVE FOR UPDATE "
                         "USING (seq IS NULL) WITH CHECK (seq IS NOT NULL)", log)

    # 3. The county column, and the county in every key of a distributed table.
    for table in sorted(dist):
        column = _column(table)
        keys = await conn.execute(text(
            "SELECT c.conname, c.contype, array_agg(a.attname::text ORDER BY k.n) FROM pg_constraint c "
            "CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY k(attnum, n) "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
            "WHERE c.conrelid = CAST(:t AS regclass) AND c.contype IN ('p', 'u') GROUP BY c.conname, c.contype"
        ), {"t": table})
        for name, kind, cols in keys.all():
            if column in cols:
                continue
            await _run(conn, f'ALTER TABLE {table} DROP CONSTRAINT "{name}"', log)
            kw = "PRIMARY KEY" if kind == "p" else "UNIQUE"
            await _run(conn, f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {kw} ({", ".join(cols)}, {column})', log)
        indexes = await conn.execute(text(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = CAST(:t AS regclass) AND i.indisunique "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
            "AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attname = :c "
            "                AND a.attnum = ANY(i.indkey))"
        ), {"t": table, "c": column})
        for name, definition in indexes.all():
            await _run(conn, f"DROP INDEX {name}", log)
            await _run(conn, _with_county_index(definition, column), log)

    # 4. Place: reference tables first (distributed tables may refer to them), then the county tables.
    for table in sorted(refs):
        await _run(conn, f"SELECT create_reference_table('{table}')", log)
    anchor_done = ANCHOR in placed
    for table in sorted(dist, key=lambda t: (t != ANCHOR, t)):
        colocate = "'none'" if table == ANCHOR and not anchor_done else f"'{ANCHOR}'"
        await _run(conn, f"SELECT create_distributed_table('{table}', '{_column(table)}', colocate_with => {colocate})",
                   log)

    # 5. Foreign keys back: between distributed tables through the county; into a reference table as they
    #    were; from a reference table into a distributed one they cannot exist (none is declared).
    for fk in fks:
        src_dist, dst_dist = fk.table in all_dist, fk.target in all_dist
        if src_dist and dst_dist:
            definition = _with_county_fk(fk.definition, _column(fk.table), _column(fk.target))
        elif dst_dist:
            raise RuntimeError(f"reference table {fk.table} refers to distributed {fk.target} ({fk.name})")
        else:
            definition = fk.definition
        await _run(conn, f'ALTER TABLE {fk.table} ADD CONSTRAINT "{fk.name}" {definition}', log)


async def placement_report(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Each placed table with its kind and co-location group (for `fupin distribute --report`)."""
    rows = await conn.execute(text(
        "SELECT logicalrelid::regclass::text, partmethod, colocationid FROM pg_dist_partition ORDER BY 1"
    ))
    return [{"table": t, "method": m, "colocation": c} for t, m, c in rows]
