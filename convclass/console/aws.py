"""The console on AWS: Lambda handlers behind an API Gateway HTTP API (payload format 2.0).

* :func:`handler` runs the FastAPI app for one HTTP API request (a minimal ASGI bridge: one request, one
  response, no streaming);
* :func:`authorizer` is the API's Lambda authorizer (simple responses): it verifies the same JWT as the app,
  from the ``Authorization`` header or the session cookie, so a request without a valid token never reaches
  the app (which verifies it again and scopes every object to the token's tenant).

Configuration comes from the environment the stack sets: the stack outputs (``CONVCLASS_DATA_BUCKET``,
``CONVCLASS_TRAINING_STATE_MACHINE_ARN`` ...; see :mod:`convclass.stack`), and the identity provider:
``CONVCLASS_CONSOLE_JWKS_URL``, ``CONVCLASS_CONSOLE_ISSUER``, ``CONVCLASS_CONSOLE_AUDIENCE``,
``CONVCLASS_CONSOLE_TENANT_CLAIM`` and ``CONVCLASS_CONSOLE_SCHEDULE_GROUP``.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable, Mapping
from functools import cache
from http.cookies import SimpleCookie
from typing import Any

from convclass.console.auth import SESSION_COOKIE, TENANT_CLAIM, NotAuthenticated, TokenVerifier

Handler = Callable[[Mapping[str, Any], Any], dict[str, Any]]


@cache
def verifier_from_environment() -> TokenVerifier:
    return TokenVerifier(
        jwks_url=os.environ["CONVCLASS_CONSOLE_JWKS_URL"],
        issuer=os.environ["CONVCLASS_CONSOLE_ISSUER"],
        audience=os.environ["CONVCLASS_CONSOLE_AUDIENCE"],
        tenant_claim=os.environ.get("CONVCLASS_CONSOLE_TENANT_CLAIM", TENANT_CLAIM),
    )


@cache
def _app_from_environment() -> Any:
    from convclass.console.app import ConsoleSettings, create_app
    from convclass.operator import Operator
    from convclass.stack import StackOutputs

    settings = ConsoleSettings(
        operator=Operator(StackOutputs.load()),
        verifier=verifier_from_environment(),
        schedule_group=os.environ.get("CONVCLASS_CONSOLE_SCHEDULE_GROUP") or None,
    )
    return create_app(settings)


def asgi_handler(app: Any) -> Handler:
    """A Lambda handler that serves HTTP API (payload 2.0) requests with the ASGI ``app``."""

    def handle(event: Mapping[str, Any], _context: Any) -> dict[str, Any]:
        # A private loop: asyncio.run would also reset the thread's current loop, which is not ours to touch.
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(_call(app, event))
        finally:
            loop.close()

    return handle


async def _call(app: Any, event: Mapping[str, Any]) -> dict[str, Any]:
    http = event.get("requestContext", {}).get("http", {})
    headers = [(k.lower().encode(), str(v).encode()) for k, v in (event.get("headers") or {}).items()]
    if event.get("cookies"):
        headers.append((b"cookie", "; ".join(event["cookies"]).encode()))
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else str(body).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": http.get("method", "GET"),
        "scheme": "https",
        "path": event.get("rawPath", "/"),
        "raw_path": str(event.get("rawPath", "/")).encode(),
        "query_string": str(event.get("rawQueryString", "")).encode(),
        "root_path": "",
        "headers": headers,
        "client": (http.get("sourceIp", ""), 0),
        "server": (str((event.get("headers") or {}).get("host", "")), 443),
    }
    sent = False
    status = 500
    out_headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            out_headers.extend(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    cookies = [v.decode() for k, v in out_headers if k.lower() == b"set-cookie"]
    merged: dict[str, str] = {}
    for key, value in out_headers:
        if key.lower() != b"set-cookie":
            merged[key.decode()] = value.decode()
    return {
        "statusCode": status,
        "headers": merged,
        "cookies": cookies,
        "body": b"".join(chunks).decode("utf-8", errors="replace"),
        "isBase64Encoded": False,
    }


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The console function: the app built once per Lambda container from its environment."""
    return asgi_handler(_app_from_environment())(event, context)


def token_of(event: Mapping[str, Any]) -> str | None:
    """The request's JWT: ``Authorization: Bearer`` or the session cookie."""
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    bearer = headers.get("authorization", "")
    if bearer.lower().startswith("bearer "):
        return bearer[7:].strip()
    jar: SimpleCookie = SimpleCookie()
    for cookie in event.get("cookies") or []:
        jar.load(str(cookie))
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel is not None else None


def authorize(verifier: TokenVerifier, event: Mapping[str, Any]) -> dict[str, Any]:
    """An HTTP API Lambda authorizer answer (simple responses) for ``event``."""
    token = token_of(event)
    if not token:
        return {"isAuthorized": False}
    try:
        principal = verifier.verify(token)
    except NotAuthenticated:
        return {"isAuthorized": False}
    return {"isAuthorized": True, "context": {"tenant": principal.tenant, "sub": principal.subject}}


def authorizer(event: Mapping[str, Any], _context: Any) -> dict[str, Any]:
    return authorize(verifier_from_environment(), event)
