"""结对帮扶: helping units, cadres (and handover), village assignments, work teams, settings, pairings."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from fupin.auth.permissions import Perm
from fupin.auth.principal import Principal
from fupin.pairing import service, structure
from fupin.pairing.schemas import (
    CadreCreate,
    CadreRead,
    CadreStatus,
    CadreUpdate,
    HandoverRequest,
    HandoverResult,
    HelpingUnitCreate,
    HelpingUnitRead,
    HelpingUnitUpdate,
    PairingCreate,
    PairingEnd,
    PairingEndResult,
    PairingRead,
    PairingSettingCreate,
    PairingSettingRead,
    UnitKind,
    VillageAssignmentCreate,
    VillageAssignmentRead,
    WorkTeamCreate,
    WorkTeamRead,
)
from fupin.schema import Page
from fupin_api.deps import Authorized, SessionDep
from fupin_api.idempotency import WriteRoute
from fupin_api.problems import problem_responses

router = APIRouter(route_class=WriteRoute, tags=["pairing"])
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[uuid.UUID | None, Query()]
AreaQ = Annotated[str | None, Query(pattern=r"^\d{12}$")]


def _cursor(items: list[object], limit: int) -> str | None:
    return str(items[-1].id) if len(items) == limit else None  # type: ignore[attr-defined]


# -- helping units -----------------------------------------------------------------------------


@router.post("/helping-units", summary="Register a helping unit (帮扶单位) of a county", status_code=201,
             response_model=HelpingUnitRead, responses=problem_responses(403, 404))
async def create_unit(body: HelpingUnitCreate, session: SessionDep,
                      principal: Principal = Authorized(Perm.pairing_write)) -> HelpingUnitRead:
    unit = await structure.create_unit(session, principal=principal, area_code=body.area_code, name=body.name,
                                     kind=body.kind, level=body.level, contact=body.contact)
    return HelpingUnitRead.model_validate(unit)


@router.get("/helping-units", summary="List helping units of your county", response_model=Page[HelpingUnitRead],
            responses=problem_responses(403))
async def list_units(session: SessionDep, principal: Principal = Authorized(Perm.pairing_read),
                     kind: UnitKind | None = None, limit: Limit = 100, cursor: Cursor = None) -> Page[HelpingUnitRead]:
    rows = await structure.list_units(session, principal=principal, kind=kind, limit=limit, after=cursor)
    return Page[HelpingUnitRead](items=[HelpingUnitRead.model_validate(r) for r in rows],
                                 next_cursor=_cursor(list(rows), limit))


@router.get("/helping-units/{unit_id}", summary="Get a helping unit", response_model=HelpingUnitRead,
            responses=problem_responses(403, 404))
async def get_unit(unit_id: uuid.UUID, session: SessionDep,
                   principal: Principal = Authorized(Perm.pairing_read)) -> HelpingUnitRead:
    return HelpingUnitRead.model_validate(await structure.get_unit(session, principal=principal, unit_id=unit_id))


@router.patch("/helping-units/{unit_id}", summary="Rename, change contact or deactivate a helping unit",
              response_model=HelpingUnitRead, responses=problem_responses(403, 404))
async def update_unit(unit_id: uuid.UUID, body: HelpingUnitUpdate, session: SessionDep,
                      principal: Principal = Authorized(Perm.pairing_write)) -> HelpingUnitRead:
    unit = await structure.update_unit(session, principal=principal, unit_id=unit_id,
                                     changes=body.model_dump(exclude_unset=True, exclude_none=True))
    return HelpingUnitRead.model_validate(unit)


# -- cadres ------------------------------------------------------------------------------------


@router.post("/cadres", summary="Register a cadre (帮扶责任人) of a unit", status_code=201, response_model=CadreRead,
             responses=problem_responses(403, 404, 409))
async def create_cadre(body: CadreCreate, session: SessionDep,
                       principal: Principal = Authorized(Perm.pairing_write)) -> CadreRead:
    cadre = await structure.create_cadre(session, principal=principal, unit_id=body.unit_id, name=body.name,
                                       level=body.level, contact=body.contact, user_id=body.user_id)
    return CadreRead.model_validate(cadre)


@router.get("/cadres", summary="List cadres of your county", response_model=Page[CadreRead],
            responses=problem_responses(403))
async def list_cadres(session: SessionDep, principal: Principal = Authorized(Perm.pairing_read),
                      unit_id: uuid.UUID | None = None, status: CadreStatus | None = None, limit: Limit = 100,
                      cursor: Cursor = None) -> Page[CadreRead]:
    rows = await structure.list_cadres(session, principal=principal, unit_id=unit_id, status=status, limit=limit,
                                     after=cursor)
    return Page[CadreRead](items=[CadreRead.model_validate(r) for r in rows], next_cursor=_cursor(list(rows), limit))


@router.get("/cadres/{cadre_id}", summary="Get a cadre", response_model=CadreRead,
            responses=problem_responses(403, 404))
async def get_cadre(cadre_id: uuid.UUID, session: SessionDep,
                    principal: Principal = Authorized(Perm.pairing_read)) -> CadreRead:
    return CadreRead.model_validate(await structure.get_cadre(session, principal=principal, cadre_id=cadre_id))


@router.patch("/cadres/{cadre_id}", summary="Update a cadre; mark retired or transferred",
              response_model=CadreRead, responses=problem_responses(403, 404))
async def update_cadre(cadre_id: uuid.UUID, body: CadreUpdate, session: SessionDep,
                       principal: Principal = Authorized(Perm.pairing_write)) -> CadreRead:
    cadre = await structure.update_cadre(session, principal=principal, cadre_id=cadre_id,
                                       changes=body.model_dump(exclude_unset=True, exclude_none=True))
    return CadreRead.model_validate(cadre)


@router.post("/cadres/{cadre_id}/handover",
             summary="Hand all households of a retired/transferred cadre to successors, all or nothing",
             response_model=HandoverResult, responses=problem_responses(403, 404, 409))
async def handover(cadre_id: uuid.UUID, body: HandoverRequest, session: SessionDep,
                   principal: Principal = Authorized(Perm.pairing_write)) -> HandoverResult:
    ended, created = await service.handover(
        session, principal=principal, cadre_id=cadre_id, handover_date=body.handover_date, reason=body.reason,
        items=[(i.household_id, i.successor_cadre_id) for i in body.items],
    )
    return HandoverResult(cadre_id=cadre_id, ended=ended, created=[PairingRead.model_validate(p) for p in created])


# -- village assignments and work teams --------------------------------------------------------


@router.post("/village-assignments", summary="Assign a helping unit to a village (单位包村)", status_code=201,
             response_model=VillageAssignmentRead, responses=problem_responses(403, 404))
async def create_village_assignment(body: VillageAssignmentCreate, session: SessionDep,
                                    principal: Principal = Authorized(Perm.pairing_write)) -> VillageAssignmentRead:
    row = await structure.create_village_assignment(
        session, principal=principal, unit_id=body.unit_id, village_code=body.village_code, lead=body.lead,
        start_date=body.start_date, end_date=body.end_date)
    return VillageAssignmentRead.model_validate(row)


@router.get("/village-assignments", summary="List unit↔village assignments in your area",
            response_model=Page[VillageAssignmentRead], responses=problem_responses(403))
async def list_village_assignments(session: SessionDep, principal: Principal = Authorized(Perm.pairing_read),
                                   unit_id: uuid.UUID | None = None, area: AreaQ = None, limit: Limit = 100,
                                   cursor: Cursor = None) -> Page[VillageAssignmentRead]:
    rows = await structure.list_village_assignments(session, principal=principal, unit_id=unit_id, area=area,
                                                  limit=limit, after=cursor)
    return Page[VillageAssignmentRead](items=[VillageAssignmentRead.model_validate(r) for r in rows],
                                       next_cursor=_cursor(list(rows), limit))


@router.get("/village-assignments/{assignment_id}", summary="Get a unit↔village assignment",
            response_model=VillageAssignmentRead, responses=problem_responses(403, 404))
async def get_village_assignment(assignment_id: uuid.UUID, session: SessionDep,
                                 principal: Principal = Authorized(Perm.pairing_read)) -> VillageAssignmentRead:
    row = await structure.get_village_assignment(session, principal=principal, assignment_id=assignment_id)
    return VillageAssignmentRead.model_validate(row)


@router.post("/work-teams", summary="Station a village work team (驻村工作队, 第一书记)", status_code=201,
             response_model=WorkTeamRead, responses=problem_responses(403, 404))
async def create_work_team(body: WorkTeamCreate, session: SessionDep,
                           principal: Principal = Authorized(Perm.pairing_write)) -> WorkTeamRead:
    team = await structure.create_work_team(
        session, principal=principal, village_code=body.village_code, unit_id=body.unit_id,
        first_secretary_id=body.first_secretary_id, leader_id=body.leader_id, member_ids=body.member_ids,
        start_date=body.start_date, end_date=body.end_date)
    return WorkTeamRead.model_validate(team)


@router.get("/work-teams", summary="List village work teams in your area", response_model=Page[WorkTeamRead],
            responses=problem_responses(403))
async def list_work_teams(session: SessionDep, principal: Principal = Authorized(Perm.pairing_read),
                          area: AreaQ = None, limit: Limit = 100, cursor: Cursor = None) -> Page[WorkTeamRead]:
    rows = await structure.list_work_teams(session, principal=principal, area=area, limit=limit, after=cursor)
    return Page[WorkTeamRead](items=[WorkTeamRead.model_validate(r) for r in rows],
                              next_cursor=_cursor(list(rows), limit))


@router.get("/work-teams/{team_id}", summary="Get a village work team", response_model=WorkTeamRead,
            responses=problem_responses(403, 404))
async def get_work_team(team_id: uuid.UUID, session: SessionDep,
                        principal: Principal = Authorized(Perm.pairing_read)) -> WorkTeamRead:
    return WorkTeamRead.model_validate(await structure.get_work_team(session, principal=principal, team_id=team_id))


# -- settings ----------------------------------------------------------------------------------


@router.post("/pairing-settings", summary="Set a county's cadre cap and visit rule from a date", status_code=201,
             response_model=PairingSettingRead, responses=problem_responses(403, 404, 409))
async def create_setting(body: PairingSettingCreate, session: SessionDep,
                         principal: Principal = Authorized(Perm.pairing_write)) -> PairingSettingRead:
    row = await structure.create_setting(
        session, principal=principal, county_code=body.county_code, effective_from=body.effective_from,
        max_households_per_cadre=body.max_households_per_cadre, visits_required=body.visits_required,
        visit_period=body.visit_period)
    return PairingSettingRead.model_validate(row)


@router.get("/pairing-settings", summary="List a county's pairing settings by effective date",
            response_model=Page[PairingSettingRead], responses=problem_responses(403, 404))
async def list_settings(session: SessionDep, county: Annotated[str, Query(pattern=r"^\d{12}$")],
                        principal: Principal = Authorized(Perm.pairing_read)) -> Page[PairingSettingRead]:
    rows = await structure.list_settings(session, principal=principal, county_code=county)
    return Page[PairingSettingRead](items=[PairingSettingRead.model_validate(r) for r in rows])


# -- pairings ----------------------------------------------------------------------------------


@router.post("/pairings", summary="Pair a cadre with a household (干部包户)", status_code=201,
             response_model=PairingRead, responses=problem_responses(403, 404, 409))
async def create_pairing(body: PairingCreate, session: SessionDep,
                         principal: Principal = Authorized(Perm.pairing_write)) -> PairingRead:
    row = await service.create_pairing(session, principal=principal, cadre_id=body.cadre_id,
                                       household_id=body.household_id, start_date=body.start_date)
    return PairingRead.model_validate(row)


@router.get("/pairings", summary="List pairings in your area (a cadre: their own)", response_model=Page[PairingRead],
            responses=problem_responses(403))
async def list_pairings(session: SessionDep, principal: Principal = Authorized(Perm.pairing_read),
                        cadre_id: uuid.UUID | None = None, household_id: uuid.UUID | None = None,
                        active: bool | None = None, limit: Limit = 100, cursor: Cursor = None) -> Page[PairingRead]:
    rows = await service.list_pairings(session, principal=principal, cadre_id=cadre_id, household_id=household_id,
                                       active=active, limit=limit, after=cursor)
    return Page[PairingRead](items=[PairingRead.model_validate(r) for r in rows],
                             next_cursor=_cursor(list(rows), limit))


@router.get("/pairings/{pairing_id}", summary="Get a pairing", response_model=PairingRead,
            responses=problem_responses(403, 404))
async def get_pairing(pairing_id: uuid.UUID, session: SessionDep,
                      principal: Principal = Authorized(Perm.pairing_read)) -> PairingRead:
    return PairingRead.model_validate(await service.get_pairing(session, principal=principal, pairing_id=pairing_id))


@router.post("/pairings/{pairing_id}/end",
             summary="End a pairing, naming the successor when the household would be left without a cadre",
             response_model=PairingEndResult, responses=problem_responses(403, 404, 409))
async def end_pairing(pairing_id: uuid.UUID, body: PairingEnd, session: SessionDep,
                      principal: Principal = Authorized(Perm.pairing_write)) -> PairingEndResult:
    ended, successor = await service.end_pairing(
        session, principal=principal, pairing_id=pairing_id, end_date=body.end_date, reason=body.reason,
        successor_cadre_id=body.successor_cadre_id)
    return PairingEndResult(ended=PairingRead.model_validate(ended),
                            successor=PairingRead.model_validate(successor) if successor else None)
