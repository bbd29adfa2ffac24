"""Bank and credit-coop postings: HMAC-signed machine clients, idempotent by (client, event_id), out-of-order
safe (a repayment before its disbursement is parked and applied when the disbursement arrives)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Text, bindparam, cast, func, literal, or_, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from fupin import secretbox
from fupin.areas.scope import in_scope, scoped, visible
from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.auth.roles import Role
from fupin.calendar import business_date
from fupin.errors import Conflict, DomainError, NotFound, RuleViolation, Unauthorized
from fupin.loans import repayments
from fupin.loans.models import (
    BankClient,
    BankClientSecret,
    BankLoanEvent,
    Loan,
    LoanApplication,
    LoanApplicationStep,
    LoanNotification,
    LoanRepayment,
)
from fupin.loans.schemas import BankEvent, BankEventResult
from fupin.settings import get_settings

log = logging.getLogger("fupin.bank")


def add_months(day: date, months: int) -> date:
    """Same day `months` later, clamped to the month's end (2026-01-31 + 1 → 2026-02-28)."""
    total = day.month - 1 + months
    year, month = day.year + total // 12, total % 12 + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - date.resolution).day
    return date(year, month, min(day.day, last))


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


_CREDENTIALS = text(
    "SELECT institution_code, area_code, active, secrets FROM fupin_bank_credentials(:c, CAST(:now AS timestamptz))"
)


def _open_secrets(client_id: str, stored: list[str], key: str | None) -> list[str]:
    """The clear secrets; one that does not open (another key, or altered) is skipped and logged, so the
    signature is refused rather than the request failing with a 500."""
    key = key if key is not None else get_settings().bank_secret_key
    opened = []
    for item in stored:
        try:
            opened.append(secretbox.unseal(item, client_id=client_id, key=key))
        except secretbox.SecretUnreadable:
            log.error("a stored secret of bank client %s does not open with bank_secret_key", client_id)
    return opened


def _bad() -> Unauthorized:
    return Unauthorized("bank.bad_signature", "missing or invalid signature", "签名无效")


class SignedBody:
    """The HMAC check of a body that may arrive in pieces (a daily file is never held in memory whole)."""

    def __init__(self, secrets: list[str], timestamp: str, offered: list[str]) -> None:
        self._macs = [hmac.new(secret.encode(), timestamp.encode() + b".", hashlib.sha256) for secret in secrets]
        self._offered = offered

    def update(self, chunk: bytes) -> None:
        for mac in self._macs:
            mac.update(chunk)

    def matches(self) -> bool:
        ok = False
        for mac in self._macs:
            expected = mac.hexdigest()
            for sig in self._offered:
                ok |= hmac.compare_digest(expected, sig)
        return ok

    def verify(self) -> None:
        if not self.matches():
            raise _bad()


def _window(timestamp: str | None, client_id: str | None, signature: str | None,
            now: datetime) -> tuple[str, str, str]:
    """The signing headers, present and inside the clock window: (client id, timestamp, signature)."""
    if not client_id or not timestamp or not signature:
        raise _bad()
    try:
        ts = int(timestamp)
    except ValueError:
        raise _bad() from None
    window = get_settings().bank_signature_window_seconds
    if abs(now.timestamp() - ts) > window:
        raise Unauthorized("bank.stale_timestamp", f"timestamp outside the ±{window} s window",
                           f"时间戳超出±{window}秒窗口")
    return client_id, timestamp, signature


@dataclass(frozen=True)
class Credentials:
    """A client's institution, area and clear secrets valid when they were read."""

    institution_code: str
    area_code: str
    secrets: tuple[str, ...]
    _clients: dict[str, BankClient] = field(default_factory=dict, compare=False, repr=False)

    def client(self, client_id: str) -> BankClient:
        """The client as a transient object, made once per credentials: it is only ever read (never added
        to a session), and building an ORM object per request was ~3 % of a single post's CPU."""
        made = self._clients.get(client_id)
        if made is None:
            made = self._clients[client_id] = BankClient(
                client_id=client_id, institution_code=self.institution_code, area_code=self.area_code, active=True)
        return made


class CredentialCache:
    """Bank clients' credentials, kept per process for `ttl` seconds (`bank_credentials_cache_seconds`), so a
    signed post needs no database read to be authenticated.

    A signature the cached secrets do not match is checked again against the database before it is refused,
    so a secret added by a rotation signs at once. What the cache can delay, by at most `ttl`, is the end of
    a secret (a rotation's overlap running out, or a secret removed) and a client's deactivation made by
    another process — the same bound as `token_cache_seconds` for users. 0 disables it."""

    MAX_CLIENTS = 10_000  # far above the banks and coops of a province; past it the cache starts over

    def __init__(self, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self.clock = clock
        self._rows: dict[str, tuple[float, Credentials]] = {}

    def get(self, client_id: str) -> Credentials | None:
        hit = self._rows.get(client_id)
        if hit is None:
            return None
        if hit[0] <= self.clock():
            del self._rows[client_id]
            return None
        return hit[1]

    def put(self, client_id: str, credentials: Credentials) -> None:
        if self.ttl <= 0:
            return
        if len(self._rows) >= self.MAX_CLIENTS:
            self._rows.clear()
        self._rows[client_id] = (self.clock() + self.ttl, credentials)

    def forget(self, client_id: str) -> None:
        self._rows.pop(client_id, None)


async def _credentials(session: AsyncSession, client_id: str, now: datetime, key: str | None) -> Credentials | None:
    # No scope exists yet and bank clients are area-scoped: the client and its secrets valid now come
    # from the SECURITY DEFINER `fupin_bank_credentials`, in one round trip, still encrypted.
    row = (await session.execute(_CREDENTIALS, {"c": client_id, "now": now})).first()
    if row is None or not row.active:
        return None
    return Credentials(row.institution_code, row.area_code, tuple(_open_secrets(client_id, row.secrets, key)))


def _offered(signature: str) -> list[str]:
    return [s.strip() for s in signature.replace(",", " ").split() if s.strip()]


def _principal_of(client: BankClient) -> Principal:
    return Principal(user_id=None, username=f"bank:{client.client_id}", role=Role.bank, area_code=client.area_code)


async def open_signed(
    session: AsyncSession, *, client_id: str | None, timestamp: str | None, signature: str | None,
    now: datetime | None = None, key: str | None = None,
) -> tuple[BankClient, Principal, SignedBody]:
    """Check the signing headers and the clock window (± `bank_signature_window_seconds`); the body is checked by the returned
    `SignedBody` (feed it the raw bytes, then `verify()`) against every currently valid secret — two
    while a rotation's overlap lasts, one after. `key` decrypts them (default: `bank_secret_key`)."""
    now = now or datetime.now(UTC)
    client_id, timestamp, signature = _window(timestamp, client_id, signature, now)
    credentials = await _credentials(session, client_id, now, key)
    if credentials is None:
        raise _bad()
    client = credentials.client(client_id)
    return client, _principal_of(client), SignedBody(list(credentials.secrets), timestamp, _offered(signature))


async def authenticate(
    session: AsyncSession, *, client_id: str | None, timestamp: str | None, signature: str | None, body: bytes,
    now: datetime | None = None, key: str | None = None, cache: CredentialCache | None = None,
) -> tuple[BankClient, Principal]:
    """Verify `X-Fupin-Signature` (one or more hex HMAC-SHA256 of f"{timestamp}.{body}", space or comma
    separated during rotation) against the client's currently valid secrets, inside the clock window.
    With a `cache`, the secrets are read from the database only when the cache has none for the client or
    they do not match (the session is then used; otherwise it is left untouched)."""
    now = now or datetime.now(UTC)
    client_id, timestamp, signature = _window(timestamp, client_id, signature, now)
    offered = _offered(signature)
    cached = cache.get(client_id) if cache is not None else None
    if cached is not None:
        check = SignedBody(list(cached.secrets), timestamp, offered)
        check.update(body)
        if check.matches():
            client = cached.client(client_id)
            return client, _principal_of(client)
    credentials = await _credentials(session, client_id, now, key)
    if credentials is None:
        raise _bad()
    if cache is not None:
        cache.put(client_id, credentials)
    check = SignedBody(list(credentials.secrets), timestamp, offered)
    check.update(body)
    check.verify()
    client = credentials.client(client_id)
    return client, _principal_of(client)


@dataclass
class _Ctx:
    session: AsyncSession
    principal: Principal
    client: BankClient
    # Applications and loans read (and locked) up front as plain rows, by application id; valid until a
    # disbursement or reversal changes which loans exist. Repayments change them in memory; `pending`
    # holds those changes until `repayments.write` (before anything else reads these tables).
    apps: dict[uuid.UUID, repayments.AppRow] | None = None
    loans: dict[uuid.UUID, repayments.LoanRow] | None = None
    absent: set[uuid.UUID] = field(default_factory=set)  # looked up, not found (unknown or another area's)
    pending: repayments.Pending = field(default_factory=repayments.Pending)


def _unknown() -> NotFound:
    return NotFound("loan.unknown_loan", "no approved loan with this application id in your area",
                    "本辖区内无此贷款")


async def _application(ctx: _Ctx, application_id: uuid.UUID | None) -> LoanApplication:
    if application_id is None:
        raise RuleViolation("bank.application_id_required", "application_id is required", "缺少 application_id")
    app = await ctx.session.scalar(scoped(select(LoanApplication).where(LoanApplication.id == application_id),
                                          ctx.principal, LoanApplication.area_code).with_for_update()
                                   .execution_options(populate_existing=True))
    if app is None:
        raise _unknown()
    return app


async def _locked_loan(ctx: _Ctx, application_id: uuid.UUID) -> Loan | None:
    return await ctx.session.scalar(scoped(select(Loan).where(Loan.application_id == application_id),
                                           ctx.principal, Loan.area_code).with_for_update()
                                    .execution_options(populate_existing=True))


def _step(app: LoanApplication, ctx: _Ctx, step: str, before: str, on: date, opinion: str) -> None:
    ctx.session.add(LoanApplicationStep(application_id=app.id, area_code=app.area_code, step=step,
                                        from_status=before, to_status=app.status, role=Role.bank.value,
                                        actor=ctx.principal.username, on_date=on, opinion=opinion))
    ctx.session.add(LoanNotification(area_code=app.area_code, household_id=app.household_id, application_id=app.id,
                                     message={"disbursed": "贷款已发放", "repaid": "贷款已还清"}.get(app.status, opinion)))


async def _disburse(ctx: _Ctx, ev: BankEvent) -> Loan:
    app = await _application(ctx, ev.application_id)
    if app.status != "approved":
        if await _locked_loan(ctx, app.id) is not None:
            raise Conflict("loan.already_disbursed", "the loan is disbursed already", "贷款已发放")
        raise _unknown()
    if ev.amount is None or ev.rate is None:
        raise RuleViolation("bank.fields_missing", "a disbursement needs amount and rate", "放款须有金额和利率")
    if ev.amount > app.amount:
        raise RuleViolation("loan.amount_over_approved", f"more than the approved {app.amount}",
                            f"超过批准金额 {app.amount} 元")
    due = ev.due_on or add_months(ev.on, app.term_months)
    if due <= ev.on or due > add_months(ev.on, app.term_months):
        raise RuleViolation("loan.term_over_limit", "the due date exceeds the approved term", "到期日超过批准期限")
    loan = Loan(area_code=app.area_code, township_code=app.township_code, household_id=app.household_id,
                enterprise_name=app.enterprise_name, product=app.product, purpose=app.purpose,
                productive=app.subsidy_eligible, principal=ev.amount, outstanding=ev.amount, interest_rate=ev.rate,
                disbursed_on=ev.on, due_on=due, status="current", coop_code=ctx.client.institution_code,
                external_id=ev.external_id, application_id=app.id)
    ctx.session.add(loan)
    before, app.status = app.status, "disbursed"
    app.coop_code = ctx.client.institution_code
    _step(app, ctx, "disbursed", before, ev.on, f"放款 {ev.amount} 元")
    await ctx.session.flush()
    return loan


async def _repay(ctx: _Ctx, ev: BankEvent, loan: Loan, app: LoanApplication | None) -> Loan:
    assert ev.amount is not None
    if ev.amount > loan.outstanding:
        raise RuleViolation("loan.over_repayment", f"only {loan.outstanding} is outstanding",
                            f"还款超过未还本金 {loan.outstanding} 元", extra={"outstanding": str(loan.outstanding)})
    if ev.on < loan.disbursed_on:
        raise RuleViolation("loan.repayment_before_disbursement", "repayment dated before disbursement",
                            "还款日期早于放款日期")
    ctx.session.add(LoanRepayment(loan_id=loan.id, area_code=loan.area_code, amount=ev.amount, paid_on=ev.on,
                                  source_event_id=ev.event_id))
    loan.outstanding -= ev.amount
    before = app.status if app else ""
    repayments.settle_status(loan, app, ev.on)
    if app is not None and app.status == "repaid" and before != "repaid":
        _step(app, ctx, "repaid", before, ev.on, "贷款已还清")
    await ctx.session.flush()
    return loan


async def _reversal(ctx: _Ctx, ev: BankEvent) -> tuple[str, Loan | None]:
    target = await ctx.session.scalar(select(BankLoanEvent).where(
        BankLoanEvent.client_id == ctx.client.client_id, BankLoanEvent.event_id == ev.reverses_event_id
    ).with_for_update().execution_options(populate_existing=True))
    if target is None or target.status not in ("applied", "parked") or target.kind == "reversal":
        raise NotFound("bank.reversal_target_unknown", "nothing applied under that event id to reverse",
                       "没有可冲正的原交易")
    if target.status == "parked":
        target.status, target.code = "reversed", None
        return "applied", None
    original = BankEvent.model_validate(target.payload)
    # A repayment addressed by the bank's loan number carries its application on the recorded row only.
    app = await _application(ctx, original.application_id or target.application_id)
    loan = await _locked_loan(ctx, app.id)
    assert loan is not None
    if target.kind == "disbursement":
        if loan.outstanding != loan.principal:
            raise Conflict("loan.reversal_after_repayment", "reverse the repayments first", "请先冲正还款")
        reps = (await ctx.session.scalars(select(LoanRepayment).where(LoanRepayment.loan_id == loan.id))).all()
        for r in reps:
            await ctx.session.delete(r)
        await ctx.session.flush()
        await ctx.session.delete(loan)
        before, app.status = app.status, "approved"
        _step(app, ctx, "disbursement_reversed", before, ev.on, "放款冲正")
        target.status = "reversed"
        await ctx.session.flush()
        return "applied", None
    assert original.amount is not None
    ctx.session.add(LoanRepayment(loan_id=loan.id, area_code=loan.area_code, amount=-original.amount, paid_on=ev.on,
                                  source_event_id=ev.event_id))
    loan.outstanding += original.amount
    repayments.settle_status(loan, app, ev.on)
    target.status = "reversed"
    await ctx.session.flush()
    return "applied", loan


async def _apply_parked(ctx: _Ctx, loan: Loan) -> None:
    """Repayments that arrived before this disbursement, in value-date order."""
    parked = (await ctx.session.scalars(select(BankLoanEvent).where(
        BankLoanEvent.application_id == loan.application_id, BankLoanEvent.status == "parked",
        BankLoanEvent.kind == "repayment").order_by(BankLoanEvent.received_at).with_for_update()
        .execution_options(populate_existing=True))).all()
    events = sorted(((BankEvent.model_validate(p.payload), p) for p in parked), key=lambda x: (x[0].on, x[1].received_at))
    app = await ctx.session.get(LoanApplication, loan.application_id, populate_existing=True)
    for ev, row in events:
        try:
            async with ctx.session.begin_nested():
                await _repay(ctx, ev, loan, app)
            row.status, row.code = "applied", None
        except DomainError as exc:
            row.status, row.code = "refused", exc.code
    await ctx.session.flush()


def event_result(ev: BankEvent, status: str, loan: Loan | repayments.LoanRow | None = None,
            exc: DomainError | None = None) -> BankEventResult:
    if exc is not None:
        return BankEventResult(event_id=ev.event_id, status="refused", http_status=exc.status, code=exc.code,
                               detail=exc.message_en)
    return BankEventResult(event_id=ev.event_id, status=status,
                           http_status=202 if status == "parked" else 200, loan_id=loan.id if loan else None)


async def _apply_single(ctx: _Ctx, ev: BankEvent) -> BankEventResult:
    """A disbursement or reversal, in its own savepoint."""
    try:
        async with ctx.session.begin_nested():
            loan: Loan | None
            if ev.kind == "disbursement":
                loan = await _disburse(ctx, ev)
                await _apply_parked(ctx, loan)
                status = "applied"
            else:
                status, loan = await _reversal(ctx, ev)
    except DomainError as exc:
        return event_result(ev, "refused", exc=exc)
    return event_result(ev, status, loan)


async def _load(ctx: _Ctx, app_ids: list[uuid.UUID], *, lock: bool) -> None:
    ctx.apps, ctx.loans = await repayments.load(ctx.session, ctx.principal, app_ids, lock=lock)
    ctx.absent = set(app_ids) - ctx.apps.keys()


async def _flush(ctx: _Ctx) -> None:
    await repayments.write(ctx.session, ctx.pending, actor=ctx.principal.username)


def decide_repayment(ev: BankEvent, app: repayments.AppRow | None, loan: repayments.LoanRow | None,
                     pending: repayments.Pending) -> BankEventResult:
    """One repayment on plain rows (its application and loan, locked by the caller), by the rules of
    one-by-one posting: refused, parked before its disbursement, or applied — then the loan and application
    change in memory and what to write goes to `pending`. Shared by the reference path and the single-post
    fast path (`fupin.loans.bank_fast`), so both decide alike."""
    exc: DomainError | None = None
    if ev.amount is None:
        exc = RuleViolation("bank.fields_missing", "a repayment needs an amount", "还款须有金额")
    elif app is None or (loan is None and app.status != "approved"):
        exc = _unknown()
    elif loan is None:
        return event_result(ev, "parked")
    elif ev.amount > loan.outstanding:
        exc = RuleViolation("loan.over_repayment", f"only {loan.outstanding} is outstanding",
                            f"还款超过未还本金 {loan.outstanding} 元", extra={"outstanding": str(loan.outstanding)})
    elif ev.on < loan.disbursed_on:
        exc = RuleViolation("loan.repayment_before_disbursement", "repayment dated before disbursement",
                            "还款日期早于放款日期")
    if exc is not None:
        return event_result(ev, "refused", exc=exc)
    assert loan is not None
    assert app is not None
    assert ev.amount is not None
    pending.repayments.append((loan.id, loan.area_code, ev.amount, ev.on, ev.event_id))
    loan.outstanding -= ev.amount
    before = app.status
    repayments.settle_status(loan, app, ev.on)
    pending.loans[loan.id] = loan
    if app.status != before:
        pending.apps[app.id] = app
    if app.status == "repaid" and before != "repaid":
        pending.repaid.append((app, before, ev.on))
    return event_result(ev, "applied", loan)


async def _repay_batch(ctx: _Ctx, events: list[BankEvent]) -> list[BankEventResult]:
    """Consecutive repayments on plain rows: each decided in order in memory (loans are locked already),
    the changes left in `ctx.pending` for one write."""
    app_ids = {ev.application_id for ev in events if ev.application_id}
    if ctx.apps is None or ctx.loans is None or not app_ids <= ctx.apps.keys() | ctx.absent:
        await _load(ctx, sorted(app_ids), lock=False)
    assert ctx.apps is not None
    assert ctx.loans is not None
    apps, loans, pending = ctx.apps, ctx.loans, ctx.pending
    return [decide_repayment(ev, apps.get(ev.application_id) if ev.application_id else None,
                             loans.get(ev.application_id) if ev.application_id else None, pending)
            for ev in events]


@dataclass(frozen=True)
class Recorded:
    """An event of a request or batch: `row_id` is its fresh `bank_loan_event` row (status 'received'),
    None when its event_id was posted before (then it is answered as a duplicate or a conflict, comparing
    `body_hash` — or, when not known, the hash of `payload`, the event's JSON text — with the first post's)."""

    event: BankEvent
    body_hash: str | None
    row_id: uuid.UUID | None
    payload: str | None = None


def body_hash(payload: Any) -> ColumnElement[str]:
    """The idempotency hash of an event, in SQL: sha256 of PostgreSQL's canonical text of its jsonb, so the
    same event hashes alike as JSON, a JSON line or a CSV row (the batch engine hashes the same way).
    `payload` is the event's JSON text, as a value or a bind parameter."""
    text_ = payload if isinstance(payload, ColumnElement) else literal(payload, Text)
    doc = cast(cast(text_, JSONB), Text)
    return func.encode(func.sha256(func.convert_to(doc, "UTF8")), "hex")


# One row per event, its hash computed in the insert; a statement the compiled-SQL cache keeps
# (executed with a list of rows).
_RECORD = (
    insert(BankLoanEvent)
    .values(id=bindparam("id"), client_id=bindparam("client_id"), event_id=bindparam("event_id"),
            body_hash=body_hash(bindparam("doc", type_=Text)), kind=bindparam("kind"),
            area_code=bindparam("area_code"), application_id=bindparam("application_id"),
            status=bindparam("status"), payload=bindparam("payload"))
    .on_conflict_do_nothing(index_elements=["client_id", "event_id", "county"])
    .returning(BankLoanEvent.id, BankLoanEvent.body_hash)
)


async def _by_external_id(ctx: _Ctx, events: list[BankEvent]) -> list[BankEvent]:
    """Repayments addressed by the bank's own loan number get the application of the loan booked under it
    now (a loan disbursed later in the same batch is found when its turn comes: see `apply_recorded`)."""
    wanted = {ev.external_id for ev in events if ev.application_id is None and ev.external_id}
    if not wanted:
        return events
    found = dict((await ctx.session.execute(
        select(Loan.external_id, Loan.application_id).where(
            Loan.coop_code == ctx.client.institution_code, Loan.external_id.in_(wanted),
            Loan.application_id.is_not(None), in_scope(ctx.principal, Loan.area_code)).order_by(Loan.disbursed_on)
    )).tuples().all())
    return [ev.model_copy(update={"application_id": found.get(ev.external_id)})
            if ev.application_id is None and ev.external_id and ev.kind == "repayment" else ev for ev in events]


async def _answer_repeat(ctx: _Ctx, item: Recorded) -> BankEventResult:
    """What the event's first post looks like now: the same body is a duplicate, another body a conflict."""
    mine = literal(item.body_hash) if item.body_hash is not None else body_hash(item.payload or "null")
    prior = (await ctx.session.execute(select(BankLoanEvent.body_hash, BankLoanEvent.status, BankLoanEvent.code,
                                              mine.label("mine"))
                                       .where(BankLoanEvent.client_id == ctx.client.client_id,
                                              BankLoanEvent.event_id == item.event.event_id)
                                       .execution_options(populate_existing=True))).one()
    if prior.body_hash != prior.mine:
        return BankEventResult(event_id=item.event.event_id, status="conflict", http_status=409,
                               code="bank.event_conflict", detail="this event_id was posted with a different body")
    return BankEventResult(event_id=item.event.event_id, status="duplicate", http_status=200, code=prior.code,
                           detail=f"already received ({prior.status}); nothing changed")


async def apply_recorded(
    session: AsyncSession, *, principal: Principal, client: BankClient, items: list[Recorded]
) -> list[BankEventResult]:
    """Apply recorded events one after the other, as if each had been posted alone, in this order.

    The reference semantics of bank posting (the batch engine defers to it for anything but plain
    repayments). Applications and loans are locked up front in id order, so concurrent posts cannot
    deadlock; runs of repayments are applied together; each fresh row gets its outcome."""
    ctx = _Ctx(session, principal, client)
    events = await _by_external_id(ctx, [it.event for it in items])
    items = [replace(it, event=ev) for ev, it in zip(events, items, strict=True)]
    app_ids = sorted({ev.application_id for ev in events if ev.application_id})
    if app_ids:
        await _load(ctx, app_ids, lock=True)
    results: list[BankEventResult | None] = [None] * len(items)
    pending: list[int] = []  # a run of fresh repayments not yet applied

    def settle(done: list[int]) -> None:
        for i in done:
            result, row_id = results[i], items[i].row_id
            if row_id is not None and result is not None:
                ctx.pending.events.append((row_id, result.status, result.code, items[i].event.application_id))

    async def run_repayments() -> None:
        if pending:
            for i, res in zip(pending, await _repay_batch(ctx, [items[i].event for i in pending]), strict=True):
                results[i] = res
            settle(pending)
            pending.clear()

    today = business_date()
    for i, item in enumerate(items):
        ev = item.event
        if item.row_id is None:
            await run_repayments()
            await _flush(ctx)  # the first post's outcome may be among the changes not yet written
            results[i] = await _answer_repeat(ctx, item)
            continue
        if ev.on > today:
            results[i] = event_result(ev, "refused", exc=RuleViolation(
                "bank.value_date_in_future", "the value date lies in the future", "记账日期晚于今天"))
            settle([i])
            continue
        if ev.kind == "repayment":
            if ev.application_id is None and ev.external_id:
                await run_repayments()  # a loan booked earlier in this batch under that number counts
                await _flush(ctx)
                ev = (await _by_external_id(ctx, [ev]))[0]
                items[i] = replace(item, event=ev)
            pending.append(i)
            continue
        await run_repayments()
        await _flush(ctx)  # the disbursement or reversal reads what the repayments before it wrote
        results[i] = await _apply_single(ctx, ev)
        ctx.apps = ctx.loans = None  # a disbursement or reversal changes which loans exist: look again
        settle([i])
    await run_repayments()
    await _flush(ctx)
    return [r for r in results if r is not None]


def count_outcomes(results: list[BankEventResult]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return counts


async def post_events(
    session: AsyncSession, *, principal: Principal, client: BankClient, raw_events: list[dict[str, Any]],
    events: list[BankEvent],
) -> list[BankEventResult]:
    """Events posted one request at a time, each with its own result; one refusal never undoes its neighbours.

    Every event row is recorded by one INSERT … ON CONFLICT DO NOTHING (the idempotency check: a repeated
    (client, event_id) is answered as a duplicate or a conflict), then applied in order by `apply_recorded`."""
    ids = [uuid.uuid4() for _ in events]
    texts = [json.dumps(raw, ensure_ascii=False) for raw in raw_events]
    rows = [{"id": row_id, "client_id": client.client_id, "event_id": ev.event_id, "doc": doc, "kind": ev.kind,
             "area_code": client.area_code, "application_id": ev.application_id, "status": "received", "payload": raw}
            for row_id, raw, doc, ev in zip(ids, raw_events, texts, events, strict=True)]
    inserted = dict((await session.execute(_RECORD, rows)).tuples().all())
    items = [Recorded(ev, inserted.get(row_id), row_id if row_id in inserted else None, doc)
             for ev, row_id, doc in zip(events, ids, texts, strict=True)]
    results = await apply_recorded(session, principal=principal, client=client, items=items)
    await audit.record(session, principal, action="bank.loan_events", entity="bank_client",
                       entity_id=client.client_id, area_code=client.area_code, after=count_outcomes(results))
    return results


async def create_client(session: AsyncSession, *, client_id: str, institution_code: str, area_code: str,
                        secret: str, key: str | None = None) -> BankClient:
    """The client and its first secret, stored encrypted under `key` (default: `bank_secret_key`)."""
    client = BankClient(client_id=client_id, institution_code=institution_code, area_code=area_code)
    session.add(client)
    await session.flush()
    session.add(_secret_row(client, secret, key=key))
    await session.flush()
    return client


def _secret_row(client: BankClient, secret: str, *, key: str | None, valid_from: datetime | None = None
                ) -> BankClientSecret:
    key = key if key is not None else get_settings().bank_secret_key
    row = BankClientSecret(client_id=client.client_id, area_code=client.area_code,
                           secret=secretbox.seal(secret, client_id=client.client_id, key=key))
    if valid_from is not None:  # else the database's now()
        row.valid_from = valid_from
    return row


async def register_client(session: AsyncSession, *, principal: Principal, client_id: str, institution_code: str,
                          area_code: str) -> tuple[BankClient, str]:
    """A new machine client bound to one institution and area; the secret is shown once."""
    if not visible(principal, area_code):
        raise NotFound("area.not_found", "area not found", "未找到区划")
    if await session.get(BankClient, client_id) is not None:
        raise Conflict("bank.client_exists", "the client id is taken", "客户端编号已存在")
    secret = secrets.token_hex(32)
    client = await create_client(session, client_id=client_id, institution_code=institution_code,
                                 area_code=area_code, secret=secret)
    await audit.record(session, principal, action="bank.client.create", entity="bank_client", entity_id=client_id,
                       area_code=area_code, after={"institution": institution_code})
    return client, secret


async def rotate_secret(session: AsyncSession, *, principal: Principal, client_id: str, overlap_hours: int,
                        key: str | None = None) -> tuple[BankClient, str, datetime]:
    """Add a new secret; the current ones stay valid for `overlap_hours`, then only the new one signs."""
    client = await session.get(BankClient, client_id, with_for_update=True)
    if client is None or not visible(principal, client.area_code):
        raise NotFound("bank.client_not_found", "no such client", "未找到该客户端")
    now = datetime.now(UTC)
    until = now + timedelta(hours=overlap_hours)
    await session.execute(update(BankClientSecret).where(
        BankClientSecret.client_id == client_id,
        or_(BankClientSecret.valid_until.is_(None), BankClientSecret.valid_until > until)).values(valid_until=until))
    secret = secrets.token_hex(32)
    session.add(_secret_row(client, secret, key=key, valid_from=now))
    await session.flush()
    await audit.record(session, principal, action="bank.client.rotate", entity="bank_client", entity_id=client_id,
                       area_code=client.area_code, after={"old_valid_until": until})
    return client, secret, until
