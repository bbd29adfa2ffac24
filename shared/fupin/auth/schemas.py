from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from fupin.auth.roles import Role
from fupin.schema import FupinSchema


class Token(FupinSchema):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class UserCreate(FupinSchema):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    password: str = Field(min_length=8, max_length=128)
    role: Role
    area_code: str = Field(pattern=r"^\d{12}$")
    full_name: str = Field("", max_length=100)


class UserUpdate(FupinSchema):
    active: bool | None = None
    password: str | None = Field(None, min_length=8, max_length=128)
    full_name: str | None = Field(None, max_length=100)


class UserRead(FupinSchema):
    id: uuid.UUID
    username: str
    full_name: str
    role: Role
    area_code: str
    active: bool
    created_at: datetime
