"""ETag on JSON reads and `If-Match` on writes, for every route at once (pure ASGI).

- A `GET` answered 200 with JSON carries `ETag`: a hash of the exact body, so it changes whenever anything the
  caller sees changes (child rows included). `If-None-Match` with that tag answers 304 without a body.
- A write (`PUT`, `PATCH`, `POST`, `DELETE`) sent with `If-Match` is first compared with the current ETag
  of the resource, read as the same caller: the write's own path, or for an action posted under an object
  (`POST /loan-applications/{id}/steps`) the object's path. A mismatch answers 412 `precondition.failed` and
  the write does not run; after a successful conditional write the response carries the object's new ETag.
- Without `If-Match` a write runs as before (the header is honoured, not required), so existing clients keep
  working. The comparison and the write are two transactions: two editors who both send the same ETag
  within the same instant can both pass; the check stops the common lost update (an editor saving over a
  change made since they loaded the form), not a race of milliseconds.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fupin_api.problems import PROBLEM

WRITES = {"PUT", "PATCH", "POST", "DELETE"}
_FORWARDED = {b"authorization", b"x-request-id", b"accept-language"}


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _tags(header: str) -> set[str]:
    # Weak and strong forms compare equal here: our tags are content hashes either way.
    return {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}


class ConditionalMiddleware:
    def __init__(self, app: ASGIApp, *, router: Any) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        headers = dict(scope.get("headers") or [])
        if method == "GET":
            await self._read(scope, receive, send, headers.get(b"if-none-match"))
        elif method in WRITES and b"if-match" in headers:
            await self._conditional_write(scope, receive, send, headers[b"if-match"].decode("latin-1"))
        else:
            await self.app(scope, receive, send)

    async def _read(self, scope: Scope, receive: Receive, send: Send, if_none_match: bytes | None) -> None:
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                if not _is_json_ok(message):
                    await send(message)
                return
            if start is None or not _is_json_ok(start):
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            tag = etag_of(body)
            if if_none_match is not None and tag in _tags(if_none_match.decode("latin-1")):
                kept = [(k, v) for k, v in start["headers"] if k.lower() not in (b"content-length", b"content-type")]
                await send({"type": "http.response.start", "status": 304, "headers": [*kept, (b"etag", tag.encode())]})
                await send({"type": "http.response.body", "body": b""})
                return
            await send({**start, "headers": [*start["headers"], (b"etag", tag.encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)

    async def _conditional_write(self, scope: Scope, receive: Receive, send: Send, if_match: str) -> None:
        if scope["method"] == "POST":
            # An action under an object (/loan-applications/{id}/steps) is conditional on that object; a POST
            # to a collection root has no single object to compare with, so If-Match there checks nothing.
            parent = scope["path"].rsplit("/", 1)[0]
            target = self._resource_path(parent) if parent.count("/") >= 2 else None
        else:
            target = self._resource_path(scope["path"])
        current = await self._current_etag(scope, target) if target is not None else None
        if current is not None and "*" not in _tags(if_match) and current not in _tags(if_match):
            await _precondition_failed(scope, send, current)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        assert start is not None
        headers = list(start["headers"])
        if target is not None and 200 <= start["status"] < 300:
            fresh = await self._current_etag(scope, target)
            if fresh is not None:
                headers.append((b"etag", fresh.encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": b"".join(chunks)})

    def _resource_path(self, path: str) -> str | None:
        """`path` when a GET route serves it (the object the write changes), else None."""
        probe = {"type": "http", "method": "GET", "path": path, "root_path": ""}
        for route in self.router.routes:
            match, _ = route.matches(probe)
            if match is Match.FULL:
                return path
        return None

    async def _current_etag(self, scope: Scope, path: str) -> str | None:
        """The ETag a GET of `path` by the same caller would carry now; None if it is not a JSON 200."""
        headers = [(k, v) for k, v in scope.get("headers") or [] if k.lower() in _FORWARDED]
        probe: dict[str, Any] = {**scope, "method": "GET", "path": path, "raw_path": path.encode(),
                                 "query_string": b"", "headers": headers}
        probe["state"] = dict(scope.get("state") or {})
        status = 0
        chunks: list[bytes] = []

        async def empty() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def collect(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"] if _is_json_ok(message) else 0
            else:
                chunks.append(message.get("body", b""))

        await self.app(probe, empty, collect)
        return etag_of(b"".join(chunks)) if status == 200 else None


def _is_json_ok(start: Message) -> bool:
    if start["status"] != 200:
        return False
    ctype = dict(start.get("headers") or []).get(b"content-type", b"")
    return ctype.startswith(b"application/json")


async def _precondition_failed(scope: Scope, send: Send, current: str) -> None:
    body = json.dumps({
        "type": "about:blank", "title": "Precondition Failed", "status": 412, "code": "precondition.failed",
        "detail": "the object changed since you read it; read it again and reapply your change",
        "detail_zh": "对象已被他人修改,请重新读取后再提交",
        "instance": scope["path"], "request_id": (scope.get("state") or {}).get("request_id"),
        "extra": {"current_etag": current},
    }, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": 412, "headers": [
        (b"content-type", PROBLEM.encode()), (b"content-length", str(len(body)).encode()), (b"etag", current.encode())]})
    await send({"type": "http.response.body", "body": body})
