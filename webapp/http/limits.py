"""Request body limits, enforced on the bytes that arrive rather than on what Content-Length claims."""

from __future__ import annotations

import json
from collections.abc import Collection

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webapp.http.problems import PROBLEM_JSON, problem


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """413 for a body over the limit: `max_bytes` in general, `max_upload_bytes` on the upload paths.

    Ordinary bodies are read whole (they are small) before the app sees them: FastAPI turns any error raised
    while it parses a body into a 400, so the limit must be settled first. Uploads are far larger and must
    not sit in memory: they are counted as they stream, and their routes read the body themselves.
    """

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, max_upload_bytes: int, upload_paths: Collection[str] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes
        self.upload_paths = frozenset(upload_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["path"] in self.upload_paths and scope["method"] == "POST"
        limit = self.max_upload_bytes if upload else self.max_bytes
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _reject(scope, send, limit)
        elif upload:
            await self._stream(scope, receive, send)
        else:
            await self._buffer(scope, receive, send)

    async def _buffer(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _reject(scope, send, self.max_bytes)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()  # after the body, only a disconnect can come
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_upload_bytes:
                raise BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:
                raise
            await _reject(scope, send, self.max_upload_bytes)


class NulRefused:
    """400 for a NUL character anywhere in the path or the query string (`?model=a%00b`, `/models/a%00b`).

    Postgres cannot store or even compare text holding NUL, so such a value would fail its query with a 500; no
    name, filter or id of apot's holds one. Refused here once rather than in every route that reads a string.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _has_nul(scope):
            await _answer(
                scope, send, 400, "the URL contains a NUL character (%00), which no name or value of apot has"
            )
            return
        await self.app(scope, receive, send)


def _has_nul(scope: Scope) -> bool:
    parts = (scope["path"].encode(), scope.get("raw_path") or b"", scope.get("query_string", b""))
    return any(b"\x00" in part or b"%00" in part for part in parts)


async def _reject(scope: Scope, send: Send, limit: int) -> None:
    await _answer(scope, send, 413, f"request body is larger than {limit} bytes")


async def _answer(scope: Scope, send: Send, status: int, detail: str) -> None:
    body = json.dumps(problem(status, detail, scope["path"])).encode()
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def read_form(request: Request) -> FormData:
    """The request's form, with at most one file and APOT_MAX_FORM_FIELDS fields: 413 past either.

    Starlette keeps the first parse of a request's form, so every reader must come through here (the CSRF check
    is usually first) for the limits to hold.
    """
    try:
        form = await request.form(max_files=1, max_fields=request.app.state.settings.max_form_fields)
    except StarletteHTTPException as exc:  # Starlette's answer to a form over its limits is a 400
        if exc.status_code == 400 and str(exc.detail).startswith("Too many"):
            raise HTTPException(413, f"the form has too many parts: {exc.detail}") from exc
        raise
    # Every form field is text a query may compare (a name, a model, a key's label): see NulRefused.
    # The 422 of a JSON body with such a value (Text in schemas): the form is well formed, one field is not.
    for name, value in form.multi_items():
        if "\x00" in name or (isinstance(value, str) and "\x00" in value):
            await form.close()
            error = {"type": "value_error", "loc": ("body", name), "msg": "must not contain a NUL character"}
            raise RequestValidationError([error])
    return form
