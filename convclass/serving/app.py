"""The HTTP adapter: SageMaker's container contract (``GET /ping``, ``POST /invocations`` on port 8080).

Thin on purpose: it enforces limits, turns bodies into ``InboundEmail``s, maps failures to status codes and
logs one line per request (request id, sizes, latency; never subject or body text). Classification is
``EmailClassifier``'s job.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

import convclass
from convclass.errors import IncompatibleModel, InvalidInput, ModelFailure
from convclass.serving.classifier import EmailClassifier, InboundEmail
from convclass.serving.multimodel import (
    MAX_PAGE_SIZE,
    ModelAlreadyLoaded,
    ModelMemoryExhausted,
    ModelNotLoaded,
    ModelRegistry,
)
from convclass.serving.schemas import (
    INVOCATION_REQUEST,
    BatchIn,
    EmailIn,
    ErrorResponse,
    InvocationResponse,
    LoadModelRequest,
    ModelDescription,
    ModelList,
    PingResponse,
)

logger = logging.getLogger("convclass.serving")

JSON = "application/json"
TEXT = "text/plain"
REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
TARGET_MODEL_HEADER = "x-amzn-sagemaker-target-model"
_TARGET_MODEL_RE = re.compile(r"[A-Za-z0-9._/-]{1,1024}")


@dataclass(frozen=True)
class ServingLimits:
    """Request limits; anything over them is refused with 413 before the model sees it."""

    max_batch_emails: int = 64
    #: SageMaker real-time endpoints accept at most 6 MB per request.
    max_request_bytes: int = 5 * 1024 * 1024
    max_email_bytes: int = 256 * 1024
    top_k: int = 3

    def __post_init__(self) -> None:
        if min(self.max_batch_emails, self.max_request_bytes, self.max_email_bytes, self.top_k) < 1:
            raise ValueError("serving limits must be positive")


class _HTTPError(Exception):
    def __init__(self, status: int, error: str, message: str, fields: Sequence[str] = ()):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.fields = list(fields)


class _ModelSlot:
    """Holds the classifier once it has loaded and answered; ``/ping`` reads it."""

    def __init__(self, classifier: EmailClassifier | None):
        self.classifier = classifier
        self.status: Literal["ready", "loading", "failed"] = "ready" if classifier else "loading"

    def load(self, loader: Callable[[], EmailClassifier]) -> None:
        started = time.perf_counter()
        try:
            classifier = loader()
        except Exception as exc:
            self.status = "failed"
            logger.error("model failed to load: %s: %s", type(exc).__name__, exc)
            return
        self.classifier = classifier
        self.status = "ready"
        logger.info("model %s ready in %.1f s", classifier.model_version, time.perf_counter() - started)


def create_app(
    classifier: EmailClassifier | None = None,
    *,
    loader: Callable[[], EmailClassifier] | None = None,
    limits: ServingLimits | None = None,
) -> FastAPI:
    """Build the app around a loaded ``classifier``, or a ``loader`` run in the background at start-up.

    With a loader the server answers at once: ``/ping`` says 503 until the model has loaded and answered a
    warm-up call, which is how SageMaker knows when to route traffic.
    """
    if (classifier is None) == (loader is None):
        raise ValueError("pass exactly one of classifier or loader")
    limits = limits or ServingLimits()
    slot = _ModelSlot(classifier)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if loader is not None and slot.classifier is None:
            threading.Thread(target=slot.load, args=(loader,), name="model-loader", daemon=True).start()
        yield
        # Close only what this app loaded: a classifier handed in belongs to the caller.
        if loader is not None and slot.classifier is not None:
            slot.classifier.close()

    app = FastAPI(
        title="convclass inference",
        version=convclass.__version__,
        description=_DESCRIPTION.format(limits=limits),
        lifespan=lifespan,
    )

    @app.get(
        "/ping",
        response_model=PingResponse,
        responses={503: {"model": PingResponse, "description": "model still loading, or failed"}},
        summary="Health check: 200 once the model has loaded and answers",
    )
    def ping() -> Response:
        current = slot.classifier
        if slot.status == "ready" and current is not None and current.healthy():
            body = PingResponse(status="ready", model_version=current.model_version)
            return Response(body.model_dump_json(), media_type=JSON)
        status = "failed" if slot.status == "failed" else "loading"
        return Response(PingResponse(status=status).model_dump_json(), status_code=503, media_type=JSON)

    @app.post(
        "/invocations",
        response_model=InvocationResponse,
        responses=_INVOCATION_RESPONSES,
        openapi_extra={"requestBody": _REQUEST_BODY_DOC},
        summary="Classify one email or a batch",
    )
    async def invocations(request: Request) -> Response:
        def current() -> EmailClassifier:
            if slot.status != "ready" or slot.classifier is None:
                raise _HTTPError(503, "ModelNotReady", "the model has not finished loading")
            return slot.classifier

        return await _invoke(request, current, limits)

    _document_invocation_request(app, limits)
    return app


async def _invoke(
    request: Request, classifier: Callable[[], EmailClassifier], limits: ServingLimits, model: str = "-"
) -> Response:
    """Read, limit and parse one invocation, classify it, map every failure to its status; log one line."""
    started = time.perf_counter()
    request_id = _request_id(request.headers.get(REQUEST_ID_HEADER))
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()[:100]
    size = 0
    n_emails = 0
    try:
        current = classifier()
        if content_type not in (JSON, TEXT):
            raise _HTTPError(
                415, "UnsupportedMediaType", f"content type must be {JSON} or {TEXT}", ["content-type"]
            )
        body = await _read_capped(request, limits.max_request_bytes)
        size = len(body)
        emails = _parse(body, content_type, limits)
        n_emails = len(emails)
        predictions = await run_in_threadpool(current.classify, emails, top_k=limits.top_k)
        response = Response(InvocationResponse(predictions=predictions).model_dump_json(), media_type=JSON)
    except _HTTPError as exc:
        response = _error_response(exc, request_id)
    except ModelFailure as exc:
        logger.error("request_id=%s model failure: %s", request_id, exc)
        response = _error_response(
            _HTTPError(500, "ModelFailure", "the model failed to classify the request"), request_id
        )
    except Exception as exc:
        # Only the exception's type is logged: messages of parsing/cleaning errors may quote the input.
        logger.error("request_id=%s unexpected %s", request_id, type(exc).__name__)
        response = _error_response(
            _HTTPError(500, "InternalError", "the request could not be classified"), request_id
        )
    response.headers[REQUEST_ID_HEADER] = request_id
    logger.info(
        "invocation request_id=%s status=%d content_type=%s bytes=%d emails=%d latency_ms=%.2f model=%s",
        request_id,
        response.status_code,
        content_type or "-",
        size,
        n_emails,
        (time.perf_counter() - started) * 1000,
        model,
    )
    return response


def _document_invocation_request(app: FastAPI, limits: ServingLimits) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            request_schema = INVOCATION_REQUEST.json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(request_schema.pop("$defs", {}))
            components["InvocationRequest"] = request_schema
            # The batch limit is configurable, so it is documented here rather than in the pydantic model.
            components["BatchIn"]["properties"]["emails"]["maxItems"] = limits.max_batch_emails
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


_INVOCATION_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "malformed JSON or a schema error (names the field)"},
    413: {"model": ErrorResponse, "description": "over a batch, request or email size limit"},
    415: {"model": ErrorResponse, "description": "content type other than application/json, text/plain"},
    500: {"model": ErrorResponse, "description": "the model failed; nothing internal is disclosed"},
    503: {"model": ErrorResponse, "description": "the model has not finished loading"},
}


def create_multi_model_app(registry: ModelRegistry, *, limits: ServingLimits | None = None) -> FastAPI:
    """SageMaker's multi-model container contract around ``registry`` (``SAGEMAKER_MULTI_MODEL=true``).

    ``POST /models`` loads (409 if loaded, 507 if over the memory budget), ``GET /models[/{name}]`` lists and
    describes, ``DELETE /models/{name}`` unloads, ``POST /models/{name}/invoke`` classifies exactly as
    ``/invocations`` does in single-model mode (same limits, cleaning and errors). An unknown name is 404.
    """
    limits = limits or ServingLimits()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        registry.close()

    app = FastAPI(
        title="convclass inference (multi-model)",
        version=convclass.__version__,
        description=_DESCRIPTION.format(limits=limits),
        lifespan=lifespan,
    )

    def error(status: int, name: str, message: str, request: Request, fields: Sequence[str] = ()) -> Response:
        request_id = _request_id(request.headers.get(REQUEST_ID_HEADER))
        return _error_response(_HTTPError(status, name, message, fields), request_id)

    @app.get("/ping", response_model=PingResponse, summary="Health check: 200 while the server answers")
    def ping() -> Response:
        encoder = registry.encoder
        if encoder is not None and not encoder.backend.healthy():
            return Response(
                PingResponse(status="loading").model_dump_json(), status_code=503, media_type=JSON
            )
        return Response(PingResponse(status="ready").model_dump_json(), media_type=JSON)

    @app.post(
        "/models",
        response_model=ModelDescription,
        responses={
            400: {"model": ErrorResponse, "description": "malformed request, or the artifact was refused"},
            409: {"model": ErrorResponse, "description": "a model of that name is already loaded"},
            507: {"model": ErrorResponse, "description": "not enough memory: unload models and retry"},
        },
        summary="Load a model (SageMaker calls this after downloading it)",
    )
    async def load_model(request: Request) -> Response:
        try:
            body = await _read_capped(request, 64 * 1024)
            document = LoadModelRequest.model_validate_json(body)
        except _HTTPError as exc:
            return error(exc.status, exc.error, exc.message, request, exc.fields)
        except ValidationError as exc:
            invalid = _validation_error(exc)
            return error(400, invalid.error, invalid.message, request, invalid.fields)
        try:
            loaded = await run_in_threadpool(registry.load, document.model_name, document.url)
        except ModelAlreadyLoaded as exc:
            return error(409, "ModelAlreadyLoaded", str(exc), request)
        except ModelMemoryExhausted as exc:
            return error(507, "InsufficientMemory", str(exc), request)
        except (IncompatibleModel, InvalidInput) as exc:
            logger.warning("model refused name=%s: %s", document.model_name, exc)
            return error(400, type(exc).__name__, str(exc), request)
        except Exception as exc:
            logger.error("model load failed name=%s: %s", document.model_name, type(exc).__name__)
            return error(500, "ModelLoadFailed", "the model could not be loaded", request)
        description = ModelDescription(modelName=loaded.name, modelUrl=loaded.url)
        return Response(description.model_dump_json(), media_type=JSON)

    @app.get("/models", response_model=ModelList, summary="List the loaded models (paginated)")
    def list_models(
        request: Request, next_page_token: str | None = None, page_size: int = MAX_PAGE_SIZE
    ) -> Response:
        try:
            models, following = registry.page(next_page_token, page_size)
        except InvalidInput as exc:
            return error(400, "InvalidInput", str(exc), request, ["next_page_token"])
        listing = ModelList(
            models=[ModelDescription(modelName=m.name, modelUrl=m.url) for m in models],
            nextPageToken=following,
        )
        return Response(listing.model_dump_json(exclude_none=True), media_type=JSON)

    @app.get(
        "/models/{model_name}",
        response_model=ModelDescription,
        responses={404: {"model": ErrorResponse, "description": "no model of that name is loaded"}},
        summary="Describe one loaded model",
    )
    def get_model(model_name: str, request: Request) -> Response:
        try:
            loaded = registry.get(model_name)
        except ModelNotLoaded as exc:
            return error(404, "ModelNotLoaded", str(exc), request)
        return Response(ModelDescription(modelName=loaded.name, modelUrl=loaded.url).model_dump_json())

    @app.delete(
        "/models/{model_name}",
        responses={404: {"model": ErrorResponse, "description": "no model of that name is loaded"}},
        summary="Unload a model",
    )
    async def unload_model(model_name: str, request: Request) -> Response:
        try:
            await run_in_threadpool(registry.unload, model_name)
        except ModelNotLoaded as exc:
            return error(404, "ModelNotLoaded", str(exc), request)
        return Response(status_code=200)

    @app.post(
        "/models/{model_name}/invoke",
        response_model=InvocationResponse,
        responses={
            **_INVOCATION_RESPONSES,
            404: {"model": ErrorResponse, "description": "no model of that name is loaded"},
        },
        openapi_extra={"requestBody": _REQUEST_BODY_DOC},
        summary="Classify one email or a batch with one loaded model",
    )
    async def invoke(model_name: str, request: Request) -> Response:
        def current() -> EmailClassifier:
            try:
                return registry.get(model_name).classifier
            except ModelNotLoaded as exc:
                raise _HTTPError(404, "ModelNotLoaded", str(exc)) from None

        # SageMaker passes the caller's TargetModel (tenant/classifier/run key) for logs; plain keys only.
        target = request.headers.get(TARGET_MODEL_HEADER, "")
        label = f"{model_name} target={target if _TARGET_MODEL_RE.fullmatch(target) else '-'}"
        return await _invoke(request, current, limits, model=label)

    _document_invocation_request(app, limits)
    return app


def _request_id(supplied: str | None) -> str:
    # Callers may pass their own id for correlation; anything that is not a plain token is replaced, since it
    # ends up in log lines.
    if supplied and _REQUEST_ID_RE.fullmatch(supplied):
        return supplied
    return uuid.uuid4().hex


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise _HTTPError(400, "InvalidInput", "content-length is not a number", ["content-length"])
        if int(declared) > limit:
            raise _HTTPError(413, "PayloadTooLarge", f"request is over the {limit}-byte limit")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _HTTPError(413, "PayloadTooLarge", f"request is over the {limit}-byte limit")
    return bytes(body)


def _parse(body: bytes, content_type: str, limits: ServingLimits) -> list[InboundEmail]:
    if content_type == TEXT:
        if not body:
            raise _HTTPError(400, "InvalidInput", "request body is empty", ["body"])
        if len(body) > limits.max_email_bytes:
            raise _HTTPError(413, "PayloadTooLarge", f"email is over the {limits.max_email_bytes}-byte limit")
        return [InboundEmail(body=body, content_type=TEXT)]
    try:
        document = INVOCATION_REQUEST.validate_json(body)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    items: list[EmailIn] = document.emails if isinstance(document, BatchIn) else [document]
    if len(items) > limits.max_batch_emails:
        raise _HTTPError(
            413,
            "PayloadTooLarge",
            f"batch has {len(items)} emails; the limit is {limits.max_batch_emails}",
            ["emails"],
        )
    for index, item in enumerate(items):
        if _utf8_size(item.subject) + _utf8_size(item.body) > limits.max_email_bytes:
            where = f"emails[{index}]" if isinstance(document, BatchIn) else "body"
            raise _HTTPError(
                413, "PayloadTooLarge", f"{where} is over the {limits.max_email_bytes}-byte limit", [where]
            )
    return [
        InboundEmail(body=e.body, subject=e.subject, content_type=e.body_content_type, id=e.id) for e in items
    ]


def _utf8_size(text: str | None) -> int:
    if not text:
        return 0
    # Lone surrogates are legal in JSON strings; count them instead of failing on them.
    return len(text.encode("utf-8", "surrogatepass"))


def _validation_error(exc: ValidationError) -> _HTTPError:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    if any(err["type"] == "json_invalid" for err in errors):
        reason = next(err["msg"] for err in errors if err["type"] == "json_invalid")
        return _HTTPError(400, "InvalidInput", f"request body is not valid JSON ({reason})", ["body"])
    described = [(_field_name(err["loc"]), err["msg"]) for err in errors[:10]]
    message = "; ".join(f"{field}: {msg}" for field, msg in described)
    return _HTTPError(400, "InvalidInput", message, [field for field, _ in described])


def _field_name(loc: tuple[int | str, ...]) -> str:
    # The first element is the request kind chosen by the discriminator ("email" or "batch"), not a field.
    parts = loc[1:] if loc and loc[0] in ("email", "batch") else loc
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "(request body)"


def _error_response(exc: _HTTPError, request_id: str) -> Response:
    body = ErrorResponse(error=exc.error, message=exc.message, request_id=request_id, fields=exc.fields)
    return Response(body.model_dump_json(), status_code=exc.status, media_type=JSON)


_DESCRIPTION = """\
Classifies inbound support emails with one tenant's model. Emails are cleaned, PII-masked and tokenized by the
same code that prepared the model's training data.

Limits: at most {limits.max_batch_emails} emails per request, {limits.max_request_bytes} bytes per request and
{limits.max_email_bytes} bytes (UTF-8 subject + body) per email; more is refused with 413.
Each prediction lists the top {limits.top_k} labels.
"""

_REQUEST_BODY_DOC: dict[str, Any] = {
    "required": True,
    "content": {
        JSON: {"schema": {"$ref": "#/components/schemas/InvocationRequest"}},
        TEXT: {
            "schema": {"type": "string", "minLength": 1},
            "description": "one email body as plain text, in any charset (decoding is repaired and reported)",
        },
    },
}
