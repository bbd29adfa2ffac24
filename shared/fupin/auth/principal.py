from __future__ import annotations

import uuid
from dataclasses import dataclass

from fupin.auth.roles import Role


@dataclass(frozen=True)
class Principal:
    """Who is acting: passed into every service so rules and scope never depend on globals."""

    user_id: uuid.UUID | None
    username: str
    role: Role
    area_code: str

    @property
    def is_system(self) -> bool:
        return self.role is Role.system


SYSTEM = Principal(user_id=None, username="system", role=Role.system, area_code="000000000000")
