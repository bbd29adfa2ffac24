"""The demo county `make run` shows a newcomer: ~10 townships, ~100 villages, ~5,000 households with
members, loans in every repayment state, and one user per role. Deterministic from the seed (only the
printed passwords are random, and they are shown once, on the run that creates the users).

Domains extend the demo by appending a step to `STEPS` (or calling `register`) from their own module:

    from fupin.seeding.demo import DemoContext, register

    async def pools(ctx: DemoContext) -> str:
        ...  # use ctx.session (owner, one transaction), ctx.rng, ctx.villages, ctx.homes, ctx.user(Role.x)
        return "2 dividend pools"

    register("dividends", pools)

Each step runs in the same transaction, in order; a step returns a one-line summary for the report.
"""

from __future__ import annotations

import importlib
import random
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.scope import bind, within_sql
from fupin.audit import service as audit
from fupin.auth import service as auth_service
from fupin.auth.principal import SYSTEM
from fupin.auth.roles import Role
from fupin.loans import postings
from fupin.seeding import synthetic

DEMO_COUNTY = "529901000000"  # prefecture 99 does not exist in Guizhou (52): every code and ID is visibly synthetic
DEMO_COUNTY_NAME = "扶贫示范县"
TOWNSHIPS = 10
VILLAGES_PER_TOWNSHIP = 10
HOUSEHOLDS = 5_000
LOANS = 3_000

# Modules whose import registers further demo steps (domains append their module name here).
STEP_MODULES: list[str] = ["fupin.seeding.demo_domains", "fupin.seeding.demo_monitoring"]


@dataclass
class DemoContext:
    session: AsyncSession
    rng: random.Random
    as_of: date
    county: str = DEMO_COUNTY
    layout: synthetic.Layout = field(default_factory=synthetic.Layout)
    homes: synthetic.HouseholdIndex | None = None
    users: dict[Role, tuple[str, str]] = field(default_factory=dict)  # role -> (username, password)
    bank: tuple[str, str, str] | None = None  # (client id, institution code, HMAC secret)

    def username(self, role: Role) -> str:
        """The demo county keeps the names the README shows; another county (a test's own) gets names of its
        own, so several demo counties can live in one database."""
        return f"demo_{role.value}" if self.county == DEMO_COUNTY else f"demo{self.county[:6]}_{role.value}"

    @property
    def townships(self) -> list[str]:
        return [a.code for a in self.layout.areas if a.level == "township"]

    @property
    def villages(self) -> list[str]:
        return [a.code for a in self.layout.villages]


Step = Callable[[DemoContext], Awaitable[str]]


@dataclass
class DemoReport:
    skipped: bool
    lines: list[str] = field(default_factory=list)
    users: dict[Role, tuple[str, str]] = field(default_factory=dict)
    bank: tuple[str, str, str] | None = None

    def text(self) -> str:
        if self.skipped:
            return "demo data skipped: the database already has areas"
        out = [f"demo county {DEMO_COUNTY} {DEMO_COUNTY_NAME}:", *(f"  {line}" for line in self.lines)]
        out.append("users (shown once; change these passwords):")
        out += [f"  {role.value:<18} {name:<24} {password}" for role, (name, password) in self.users.items()]
        if self.bank is not None:
            client_id, institution, secret = self.bank
            out.append("bank client (signs /bank/* requests, HMAC-SHA256 key = the secret's UTF-8 bytes; shown once):")
            out.append(f"  client {client_id}  institution {institution}  secret {secret}")
        return "\n".join(out)


async def _areas(ctx: DemoContext) -> str:
    ctx.layout = synthetic.county_layout(
        ctx.rng, county=ctx.county, name=DEMO_COUNTY_NAME, townships=TOWNSHIPS, villages_per_township=VILLAGES_PER_TOWNSHIP
    )
    n = await synthetic.write_areas(ctx.session, ctx.layout, HOUSEHOLDS)
    return f"{n} areas ({len(ctx.townships)} townships, {len(ctx.villages)} villages)"


async def _households(ctx: DemoContext) -> str:
    ctx.homes, members = await synthetic.write_households(ctx.session, ctx.rng, ctx.layout, HOUSEHOLDS, ctx.as_of)
    return f"{HOUSEHOLDS:,} households with {members:,} members"


async def _loans(ctx: DemoContext) -> str:
    assert ctx.homes is not None
    loans, repayments = await synthetic.write_loans(ctx.session, ctx.rng, ctx.homes, LOANS, ctx.as_of)
    rows = await ctx.session.execute(text(f"SELECT status, count(*) FROM loan WHERE {within_sql('area_code', 'p')} GROUP BY 1 ORDER BY 1"),
                                     bind("p", ctx.county))
    mix = ", ".join(f"{status} {n}" for status, n in rows)
    return f"{loans:,} loans ({mix}) with {repayments:,} repayments"


def _area_for(ctx: DemoContext, role: Role) -> str:
    if role in (Role.township_station, Role.township_finance, Role.credit_coop):
        return ctx.townships[0]
    if role in (Role.village_committee, Role.cadre):
        return ctx.villages[0]
    return ctx.county


async def _users(ctx: DemoContext) -> str:
    for role in Role:
        if role is Role.system:
            continue
        username = ctx.username(role)
        password = secrets.token_urlsafe(12)
        await auth_service.create_user(
            ctx.session, username=username, password=password, role=role, area_code=_area_for(ctx, role),
            full_name=f"演示{role.value}",
        )
        ctx.users[role] = (username, password)
    return f"{len(ctx.users)} users, one per role"


async def _bank(ctx: DemoContext) -> str:
    """A machine client of the first township's credit coop (the institution its demo loans name), so the
    bank API can be tried at once; its secret is printed with the users."""
    township = ctx.townships[0]
    client_id, institution = f"demo-coop-{township[:9]}", synthetic.coop_code(township)
    secret = secrets.token_hex(32)
    await postings.create_client(ctx.session, client_id=client_id, institution_code=institution, area_code=township,
                                 secret=secret)
    ctx.bank = (client_id, institution, secret)
    return f"bank client {client_id} for {institution}"


STEPS: list[tuple[str, Step]] = [
    ("areas", _areas),
    ("households", _households),
    ("loans", _loans),
    ("users", _users),
    ("bank", _bank),
]


def load_steps() -> list[tuple[str, Step]]:
    """Import every module in STEP_MODULES (each registers its steps) and return the steps in order."""
    for module in STEP_MODULES:
        importlib.import_module(module)
    return STEPS


def register(name: str, step: Step) -> None:
    """Append a domain's step (idempotent by name, so re-importing a module does not add it twice)."""
    if all(existing != name for existing, _ in STEPS):
        STEPS.append((name, step))


async def seed_demo(session: AsyncSession, *, seed: int = 2016, as_of: date | None = None) -> DemoReport:
    """Run every step in the caller's owner transaction, unless the database already has areas."""
    if await session.scalar(text("SELECT EXISTS (SELECT 1 FROM area)")):
        return DemoReport(skipped=True)
    load_steps()
    ctx = DemoContext(session=session, rng=random.Random(seed), as_of=as_of or datetime.now(UTC).date())
    report = DemoReport(skipped=False)
    for name, step in STEPS:
        report.lines.append(f"{name}: {await step(ctx)}")
    report.users = ctx.users
    report.bank = ctx.bank
    await audit.record(
        session, SYSTEM, action="seed.demo", entity="area", entity_id=ctx.county, area_code=ctx.county,
        after={"seed": seed, "steps": [name for name, _ in STEPS]},
    )
    return report
