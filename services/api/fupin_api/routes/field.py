"""Field work from phones with weak networks: one request carries a day's offline visits, measures and
photo links."""

from __future__ import annotations

from fastapi import APIRouter

from fupin.auth.permissions import Perm
from fupin.auth.principal import Principal
from fupin.documents.service import Limits
from fupin.field import sync
from fupin.field.schemas import SyncBatch, SyncResults
from fupin_api.deps import Authorized, SessionDep, SettingsDep
from fupin_api.idempotency import WriteRoute
from fupin_api.problems import problem_responses

router = APIRouter(route_class=WriteRoute, tags=["field"])


@router.post("/field/sync", summary="Sync a batch of offline visits, measures and evidence (per-item results)",
             response_model=SyncResults, responses=problem_responses(403))
async def sync_field_work(body: SyncBatch, session: SessionDep, settings: SettingsDep,
                          principal: Principal = Authorized(Perm.pairing_visit_write)) -> SyncResults:
    """Each item: `created`, `already_synced` (sent before: the same id, nothing recorded twice) or `refused`
    with a code — the rule's own (e.g. `visit.future_date`), `sync.household_transferred`,
    `sync.pairing_ended`, `sync.id_taken`, `document.already_linked`. A refused item leaves the others in."""
    return await sync.sync_batch(session, principal=principal, items=body.items, limits=Limits.of(settings))
