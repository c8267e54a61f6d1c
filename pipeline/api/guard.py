"""What the API refuses before reading a request: bodies above the size limit (413) and writes
without the API key (401, or 403 when no key is configured). A plain ASGI middleware, so that a
refusal costs nothing: the body of a refused request is never read, let alone parsed.

The size limit holds for bodies without a Content-Length too (chunked uploads): the stream is
counted as it is read and cut off at the limit.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import HTTPException

API_KEY_HEADER = "X-API-Key"
READ_METHODS = {"GET", "HEAD", "OPTIONS"}
MAX_VALIDATION_ERRORS = 20


class BodyTooLarge(HTTPException):
    """Raised from inside the body stream: FastAPI passes HTTPExceptions through its body parsing."""

    def __init__(self, limit: int):
        super().__init__(413, too_large(limit))


def too_large(limit: int) -> str:
    return (
        f"request body larger than {limit:,} bytes (PIPELINE_API_MAX_BODY_MB); "
        "send the rows in smaller batches"
    )


def write_refusal(configured: str | None, presented: str | None) -> tuple[int, str] | None:
    """(status, reason) if a write must be refused; the key is compared in constant time."""
    if configured is None:
        return 403, "writes are disabled: set PIPELINE_API_KEY on the server to enable them"
    if presented is None or not hmac.compare_digest(presented.encode(), configured.encode()):
        return 401, f"missing or wrong {API_KEY_HEADER} header"
    return None


def describe_validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """FastAPI's validation errors without the input they were about: where and what, never the
    submitted value (it can be megabytes, or someone's personal data)."""
    described = [
        {
            "loc": list(e.get("loc", ())),
            "msg": e.get("msg", "invalid"),
            "type": e.get("type", "invalid"),
        }
        for e in errors[:MAX_VALIDATION_ERRORS]
    ]
    if len(errors) > MAX_VALIDATION_ERRORS:
        described.append(
            {
                "loc": [],
                "msg": f"and {len(errors) - MAX_VALIDATION_ERRORS} more errors",
                "type": "too_many_errors",
            }
        )
    return described


class Guard:
    def __init__(self, app, state):
        self.app = app
        self.state = (
            state  # pipeline.api.app._State: settings (read on first use) and snapshot meta
        )

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        settings = self.state.settings
        limit = settings.api.max_body_bytes
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["method"] not in READ_METHODS:
            refusal = write_refusal(settings.api.key, headers.get(API_KEY_HEADER.lower()))
            if refusal is not None:
                return await self.reply(send, *refusal)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            status = 413 if length.isdigit() else 400
            return await self.reply(
                send, status, too_large(limit) if status == 413 else "bad Content-Length"
            )

        received = 0
        started = False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if started:
                raise
            await self.reply(send, 413, too_large(limit))

    async def reply(self, send, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail, **self.state.current_meta()}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        if status == 401:
            headers.append((b"www-authenticate", API_KEY_HEADER.encode()))
        if status == 413:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
