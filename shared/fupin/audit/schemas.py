from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from fupin.schema import FupinSchema


class AuditEventRead(FupinSchema):
    id: int
    occurred_at: datetime
    actor_id: uuid.UUID | None
    actor_name: str
    role: str
    area_code: str
    action: str
    entity: str
    entity_id: str
    result: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    seq: int | None = Field(None, description="Position in the county's audit chain; null until sealed (seconds)")
    hash: str | None = Field(None, description="Chain hash, set when the row is sealed")
    sealed_at: datetime | None = None


class AccessDenialRead(FupinSchema):
    window_start: datetime = Field(description="The minute these refusals were counted in")
    actor: str = Field(description="`user:<id>`, `bank:<client id>`, or `addr:<address>` for a caller who "
                                   "proved no identity")
    actor_id: uuid.UUID | None
    actor_name: str
    role: str
    area_code: str
    method: str
    route: str = Field(description="Route template, e.g. /households/{household_id}")
    status: int
    code: str = Field(description="The problem code the caller was answered with")
    count: int = Field(description="Refusals in this minute")
    object_ids: list[str] = Field(description="The first distinct objects asked for in this minute (at most 20)")
    client_addrs: list[str] = Field(description="The first distinct client addresses in this minute (at most 10)")
    first_at: datetime
    last_at: datetime
