from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import Field
from sqlalchemy import select

from fupin import jobs
from fupin.areas.scope import scoped
from fupin.audit import service as audit
from fupin.auth.permissions import Perm
from fupin.auth.principal import Principal
from fupin.errors import not_found
from fupin.platform_jobs import AUDIT_VERIFY
from fupin.schema import FupinSchema, Page
from fupin_api.deps import Authorized, SessionDep
from fupin_api.idempotency import WriteRoute
from fupin_api.problems import problem_responses

router = APIRouter(route_class=WriteRoute, tags=["jobs"])


class JobProgressRead(FupinSchema):
    done: int = Field(examples=[1200])
    total: int | None = Field(examples=[5000], description="null while the total is not yet known")
    updated_at: datetime


class JobRunRead(FupinSchema):
    id: uuid.UUID
    kind: str
    key: str
    area_code: str
    status: str = Field(description="pending, running, waiting (inputs not ready), done, failed (retried), dead")
    attempts: int
    last_error: str | None
    result: dict[str, Any] | None
    requested_by: str
    request_id: str | None = Field(None, description="X-Request-ID of the API request that created the run")
    waiting_reason: str | None = Field(None, description="While waiting: why the run cannot start yet")
    waiting_for: str | None = Field(None, description="While waiting: the key of the run whose completion starts it")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: JobProgressRead | None = Field(None, description="Work done so far, for runs that report it")


async def _with_progress(session: SessionDep, runs: list[jobs.JobRun]) -> list[JobRunRead]:
    keys = [r.key for r in runs]
    found = {p.key: p for p in (await session.scalars(
        select(jobs.JobProgress).where(jobs.JobProgress.key.in_(keys)))).all()} if keys else {}
    return [JobRunRead.model_validate(r).model_copy(update={"progress": (
        JobProgressRead.model_validate(found[r.key]) if r.key in found else None)}) for r in runs]


async def job_location_by_key(session: SessionDep, response: Response, key: str) -> None:
    run_id = await session.scalar(select(jobs.JobRun.id).where(jobs.JobRun.key == key))
    if run_id is not None:
        job_location(response, run_id)


def job_location(response: Response, run_id: uuid.UUID) -> None:
    """Point an accepted (202) request at the job resource that shows its status, progress and result."""
    response.headers["Location"] = f"/jobs/{run_id}"


@router.get("/jobs", summary="List background job runs", response_model=Page[JobRunRead], responses=problem_responses(403))
async def list_jobs(
    session: SessionDep,
    principal: Principal = Authorized(Perm.job_read),
    kind: Annotated[str | None, Query(max_length=64)] = None,
    request_id: Annotated[str | None, Query(max_length=64, description="runs created by this API request")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[JobRunRead]:
    stmt = scoped(select(jobs.JobRun), principal, jobs.JobRun.area_code).order_by(jobs.JobRun.created_at.desc())
    stmt = stmt.limit(limit)
    if kind:
        stmt = stmt.where(jobs.JobRun.kind == kind)
    if request_id:
        stmt = stmt.where(jobs.JobRun.request_id == request_id)
    rows = (await session.scalars(stmt)).all()
    return Page[JobRunRead](items=await _with_progress(session, list(rows)))


@router.get("/jobs/{run_id}", summary="Get one job run", response_model=JobRunRead, responses=problem_responses(403, 404))
async def get_job(run_id: uuid.UUID, session: SessionDep, principal: Principal = Authorized(Perm.job_read)) -> JobRunRead:
    run = await session.scalar(
        scoped(select(jobs.JobRun).where(jobs.JobRun.id == run_id), principal, jobs.JobRun.area_code)
    )
    if run is None:
        raise not_found("job")
    return (await _with_progress(session, [run]))[0]


@router.post(
    "/jobs/audit-verify", summary="Ask the worker to verify the audit hash chain now",
    response_model=JobRunRead, status_code=202, responses=problem_responses(403),
)
async def trigger_audit_verify(session: SessionDep, response: Response,
                               principal: Principal = Authorized(Perm.job_trigger)) -> JobRunRead:
    key = f"{AUDIT_VERIFY}:manual:{uuid.uuid4().hex[:12]}"
    run, _ = await jobs.request_job(session, kind=AUDIT_VERIFY, key=key, area_code=principal.area_code,
                                    requested_by=principal.username)
    await audit.record(session, principal, action="job.request", entity="job", entity_id=key)
    job_location(response, run.id)
    return JobRunRead.model_validate(run)
