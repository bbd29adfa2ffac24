"""Request id, metrics by route template, body-size limit and security headers, as pure ASGI."""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fupin_api.metrics import LATENCY, REQUESTS

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=31536000"),
]


class _TooLarge(Exception):
    pass


class PlatformMiddleware:
    def __init__(self, app: ASGIApp, *, max_body: int, upload_limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_body = max_body
        # Routes that stream large uploads (a bank's daily file) have their own ceiling.
        self.upload_limits = upload_limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500}
        headers = dict(scope.get("headers") or [])
        max_body = self.upload_limits.get(scope.get("path", ""), self.max_body)
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body:
            await self._reject(send, request_id)
            self._observe(scope, 413, started)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    raise _TooLarge
            return message

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode()), *SECURITY_HEADERS]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_wrapper)
        except _TooLarge:
            await self._reject(send, request_id)
            status_holder["status"] = 413
        self._observe(scope, status_holder["status"], started)

    @staticmethod
    def _observe(scope: Scope, status: int, started: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", "unmatched")
        REQUESTS.labels(scope["method"], template, str(status)).inc()
        LATENCY.labels(scope["method"], template).observe(time.perf_counter() - started)

    @staticmethod
    async def _reject(send: Send, request_id: str) -> None:
        body = (
            b'{"type":"about:blank","title":"Payload Too Large","status":413,"code":"request.too_large",'
            b'"detail":"request body too large","detail_zh":"\xe8\xaf\xb7\xe6\xb1\x82\xe4\xbd\x93\xe8\xbf\x87\xe5\xa4\xa7"}'
        )
        await send({
            "type": "http.response.start", "status": 413,
            "headers": [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode()),
                        (b"x-request-id", request_id.encode())],
        })
        await send({"type": "http.response.body", "body": body})
