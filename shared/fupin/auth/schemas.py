from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from fupin.auth.roles import Role
from fupin.schema import FupinSchema


class Token(FupinSchema):
    access_token: str = Field(description="Send as `Authorization: Bearer <access_token>`; valid for `expires_in` "
                                          "seconds.", examples=["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIi…"])
    token_type: str = Field("bearer", examples=["bearer"])
    expires_in: int = Field(description="Seconds the access token is valid.", examples=[900])
    refresh_token: str = Field(
        description="Trade it at `POST /auth/refresh` for a new pair before or after the access token expires. "
                    "It works once: keep the new one from each answer. Store it like a password.",
        examples=["3f0c1d9e-6a1b-4c55-9a57-1b1e4cf0e2aa.q8Vd0m3wWcE0rM0pQYk9b2Jx7iT6aC1ZsN4yLhU5oRg"])
    refresh_expires_in: int = Field(description="Seconds the refresh token is valid if unused.",
                                    examples=[1209600])


class RefreshRequest(FupinSchema):
    refresh_token: str = Field(min_length=1, max_length=200,
                               examples=["3f0c1d9e-6a1b-4c55-9a57-1b1e4cf0e2aa.q8Vd0m3wWcE0rM0pQYk9b2Jx7iT6aC1ZsN4yLhU5oRg"])


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
