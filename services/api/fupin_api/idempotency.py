"""`Idempotency-Key` on every authenticated POST, PUT and PATCH (rules in `fupin.idempotency.service`).

How it fits the request's transaction (`deps.get_session` commits when the function-scoped dependencies
exit, after the endpoint's response was built and before a byte is sent):
1. `WriteRoute` gives each write route whose dependencies identify a caller (`identifies_caller`) a first
   dependency that reads the header (and documents it in OpenAPI).
2. The caller dependency (`deps.get_principal`, the bank's `bank_caller`), once it knows who is calling,
   calls `claim_for`: the key is held for the transaction and an answer stored earlier is replayed
   (raised as `Replay`, which rolls the transaction back and answers with the stored response).
3. `WriteRoute`'s handler wraps FastAPI's: when the endpoint answered 2xx, the answer is written with the
   session still open, so it commits with the write it acknowledges or not at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Header, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from fupin.idempotency import service
from fupin.idempotency.service import StoredAnswer
from fupin_api.problems import problem_responses

HEADER = "Idempotency-Key"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
REPLAYED_HEADER = "Idempotent-Replayed"
# Headers of an answer that are not part of it (recomputed, or per request).
_NOT_STORED = frozenset({"content-length", "date", "x-request-id", "set-cookie"})
_CHUNK = 1 << 20

F = TypeVar("F", bound=Callable[..., Any])


def identifies_caller(dependency: F) -> F:
    """Mark a dependency that authenticates the caller and calls `claim_for`: write routes that use it
    take `Idempotency-Key`."""
    dependency.__fupin_identifies_caller__ = True  # type: ignore[attr-defined]
    return dependency


class Replay(Exception):
    """Not an error: the way a stored answer leaves the dependency chain (rolling the transaction back)."""

    def __init__(self, answer: StoredAnswer) -> None:
        super().__init__("idempotent replay")
        self.answer = answer


@dataclass
class _Claim:
    session: AsyncSession
    area_code: str
    caller: str
    key: str
    fingerprint: str | None  # None: a streamed body, known once the route read it (`body_read`)


async def idempotency_key(
    request: Request,
    key: Annotated[str | None, Header(
        alias=HEADER, min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
        description="Optional. A unique key per intended write (a UUID): a retry with the same key and the same "
        "request gets the first answer (same status, body and Location, plus `Idempotent-Replayed: true`) and "
        "does nothing again. The same key with another request: 422 `idempotency.key_reused`; while the first "
        "is still running: 409 `idempotency.in_flight`. Keys are per caller and kept for "
        "`idempotency_key_hours` (7 days by default). Only committed (2xx) answers are kept: a refused "
        "request changed nothing and its retry runs again.",
    )] = None,
) -> None:
    if key is not None:
        request.state.idempotency_key = key


async def claim_for(request: Request, session: AsyncSession, *, caller: str, area_code: str) -> None:
    """Called by a caller dependency once the caller is known: hold the key or replay its stored answer."""
    key: str | None = getattr(request.state, "idempotency_key", None)
    if key is None or getattr(request.state, "idempotency", None) is not None:
        return
    fingerprint = await request_fingerprint(request)
    stored = await service.claim(session, area_code=area_code, caller=caller, key=key, fingerprint=fingerprint)
    if stored is not None:
        raise Replay(stored)
    request.state.idempotency = _Claim(session, area_code, caller, key, fingerprint)


async def claim_streamed(
    request: Request, session: AsyncSession, *, caller: str, area_code: str, drain: Callable[[], Awaitable[str]]
) -> None:
    """Like `claim_for`, for a body too large to read before the write (a bank's daily file, streamed under
    its signature). The key is held now. An answer stored for it is replayed only after `drain` has read
    and authenticated the whole body and returned its sha256, which must be the first request's; else the
    route streams the body and reports its sha256 with `body_read`."""
    key: str | None = getattr(request.state, "idempotency_key", None)
    if key is None or getattr(request.state, "idempotency", None) is not None:
        return
    held = await service.hold(session, area_code=area_code, caller=caller, key=key)
    if held is not None:
        if held.fingerprint != _streamed_fingerprint(request, await drain()):
            raise service.key_reused()
        raise Replay(held.answer)
    request.state.idempotency = _Claim(session, area_code, caller, key, None)


def body_read(request: Request, sha256: str) -> None:
    """A streaming route reports the sha256 of the body it read (see `claim_streamed`)."""
    claim: _Claim | None = getattr(request.state, "idempotency", None)
    if claim is not None and claim.fingerprint is None:
        claim.fingerprint = _streamed_fingerprint(request, sha256)


def _streamed_fingerprint(request: Request, body_sha256: str) -> str:
    return hashlib.sha256(
        f"{request.method}\x00{request.url.path}\x00{_query(request)}\x00stream:{body_sha256}".encode()
    ).hexdigest()


def _query(request: Request) -> str:
    return "&".join(sorted(request.url.query.split("&")))


async def request_fingerprint(request: Request) -> str:
    """sha256 of the method, path, query and body. A JSON body counts by its content (key order and spacing
    do not matter); a form by its fields, an uploaded file by its bytes. FastAPI has parsed the body before
    any dependency runs, and Starlette keeps it on the request, so nothing is read twice from the client."""
    digest = hashlib.sha256()
    digest.update(f"{request.method}\x00{request.url.path}\x00".encode())
    digest.update(_query(request).encode() + b"\x00")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.form()
        for name, value in sorted(form.multi_items(), key=lambda item: item[0]):
            digest.update(name.encode() + b"\x00")
            if isinstance(value, UploadFile):
                await _digest_upload(digest, value)
            else:
                digest.update(value.encode() + b"\x00")
        return digest.hexdigest()
    body = await request.body()
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest.update(canonical.encode())
    except ValueError:
        digest.update(body)
    return digest.hexdigest()


async def _digest_upload(digest: Any, upload: UploadFile) -> None:
    digest.update(f"{upload.filename}\x00{upload.content_type}\x00".encode())
    await upload.seek(0)
    while chunk := await upload.read(_CHUNK):
        digest.update(chunk)
    await upload.seek(0)
    digest.update(b"\x00")


async def _store(request: Request, response: Response) -> None:
    claim: _Claim | None = getattr(request.state, "idempotency", None)
    body = getattr(response, "body", None)  # a streamed answer has none: nothing to replay, nothing kept
    if claim is None or claim.fingerprint is None or not 200 <= response.status_code < 300 \
            or not isinstance(body, bytes):
        return
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers
               if k.decode("latin-1").lower() not in _NOT_STORED]
    settings = request.app.state.settings
    await service.store(
        claim.session, area_code=claim.area_code, caller=claim.caller, key=claim.key, fingerprint=claim.fingerprint,
        method=request.method, path=request.url.path, answer=StoredAnswer(response.status_code, headers, body),
        ttl_hours=settings.idempotency_key_hours,
    )


def _identifies_caller(dependant: Dependant) -> bool:
    if getattr(dependant.call, "__fupin_identifies_caller__", False):
        return True
    return any(_identifies_caller(sub) for sub in dependant.dependencies)


class WriteRoute(APIRoute):
    """The route class of every router: POST/PUT/PATCH routes with an identified caller take
    `Idempotency-Key` (see the module docstring)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        methods = {m.upper() for m in kwargs.get("methods") or ()}
        dependencies = list(kwargs.get("dependencies") or ())
        probe = get_dependant(path=path, call=endpoint)
        self.idempotent = bool(methods & WRITE_METHODS) and (
            _identifies_caller(probe)
            or any(d.dependency is not None and _identifies_caller(get_dependant(path=path, call=d.dependency))
                   for d in dependencies)
        )
        if self.idempotent:
            kwargs["dependencies"] = [Depends(idempotency_key), *dependencies]
            kwargs["responses"] = {**problem_responses(409), **(kwargs.get("responses") or {})}
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not self.idempotent:
            return handler

        async def idempotent_handler(request: Request) -> Response:
            response = await handler(request)
            # Still inside the function-scoped dependencies: the session has not committed yet.
            await _store(request, response)
            return response

        return idempotent_handler


def install(app: FastAPI) -> None:
    @app.exception_handler(Replay)
    async def replay(_request: Request, exc: Replay) -> Response:
        answer = exc.answer
        headers = dict(answer.headers)
        headers[REPLAYED_HEADER] = "true"
        return Response(content=answer.body, status_code=answer.status_code, headers=headers)
