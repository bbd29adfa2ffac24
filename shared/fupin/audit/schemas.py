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
