"""Domain errors carry a stable code, their intended HTTP status and a message in Chinese and English.

No HTTP imports here: the API renders these as RFC 9457 problem+json, the worker records them.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status: int = 422
    code: str = "domain.error"

    def __init__(
        self,
        code: str | None = None,
        message_en: str = "",
        message_zh: str = "",
        *,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.code = code or type(self).code
        self.message_en = message_en or self.code
        self.message_zh = message_zh or self.message_en
        if status is not None:
            self.status = status
        self.extra = extra or {}
        super().__init__(f"{self.code}: {self.message_en}")


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Unauthorized(DomainError):
    status = 401
    code = "auth.unauthorized"


class RuleViolation(DomainError):
    status = 422
    code = "rule.violation"


class Unavailable(DomainError):
    status = 503
    code = "service.unavailable"


def not_found(entity: str) -> NotFound:
    return NotFound(f"{entity}.not_found", f"{entity} not found", f"未找到{entity}")
