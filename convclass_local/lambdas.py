"""Run a Lambda function's real handler in this process, the way the Lambda runtime would call it.

Every convclass function is one container image with a different ``CMD`` (``module.function``), so the
function's ``ImageConfig.Command`` names the handler exactly as AWS would resolve it. Results and errors use
the Lambda wire format: an error payload carries ``errorType`` (the exception's class name), which Step
Functions turns into the error name that ``Catch`` clauses match (``InsufficientData``, ``InvalidInput`` ...).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

import boto3

from convclass.layout import lambda_log_group
from convclass_local.embedded import patched_environ

Handler = Callable[[Any, Any], Any]

# Handlers read their configuration from the process environment; invocations that carry different variables
# must not interleave, so in-process invocations run one at a time (a local run has two cores anyway).
_INVOKE_LOCK = threading.Lock()
_log = logging.getLogger(__name__)


class _ThreadRoutedStream(io.TextIOBase):
    """Stands in for ``sys.stdout``/``sys.stderr``: what a handler writes during its invocation goes to that
    invocation's log (as Lambda sends it to CloudWatch Logs), everything else to the real stream."""

    def __init__(self, target: TextIO, fallback: TextIO) -> None:
        self._target = target
        self._fallback = fallback
        self._local = threading.local()

    @property
    def _out(self) -> TextIO:
        """The stream in place when routing began, or the process's own once that one is closed (a test
        runner closes the capture streams it handed out)."""
        return self._fallback if self._target.closed else self._target

    @contextmanager
    def capture(self, sink: list[str]) -> Iterator[None]:
        previous = getattr(self._local, "sink", None)
        self._local.sink = sink
        try:
            yield
        finally:
            self._local.sink = previous

    def write(self, text: str) -> int:
        sink = getattr(self._local, "sink", None)
        if sink is None:
            return self._out.write(text)
        sink.append(text)
        return len(text)

    def flush(self) -> None:
        self._out.flush()

    def isatty(self) -> bool:
        return self._out.isatty()

    def fileno(self) -> int:
        return self._out.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self._out, "encoding", "utf-8"))


@contextmanager
def routed_output() -> Iterator[None]:
    """Route handler output into per-invocation logs while the block runs (a local runtime's lifetime).

    Install before the handlers are imported: Powertools' Logger keeps the stream it finds at import time.
    """
    out, err = sys.stdout, sys.stderr
    sys.stdout = _ThreadRoutedStream(out, sys.__stdout__ or out)
    sys.stderr = _ThreadRoutedStream(err, sys.__stderr__ or err)
    try:
        yield
    finally:
        sys.stdout = out if not out.closed else (sys.__stdout__ or out)
        sys.stderr = err if not err.closed else (sys.__stderr__ or err)


@contextmanager
def _captured(sink: list[str]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, _ThreadRoutedStream):
                stack.enter_context(stream.capture(sink))
        yield


def ship_logs(function_name: str, request_id: str, text: str) -> None:
    """Put an invocation's output into the function's log group, where operators look for it."""
    logs = boto3.client("logs")
    group, stream = lambda_log_group(function_name), f"local/{request_id}"
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    lines = [line for line in text.splitlines() if line.strip()] or ["(no output)"]
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now, "message": line} for line in lines[:10_000]],
    )


class HandlerNotFound(LookupError):
    """A function's configured handler cannot be imported (a wrong CMD, or the module is missing)."""


@dataclass
class LambdaContext:
    """The attributes of the Lambda runtime's context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_s: float
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or lambda_log_group(self.function_name)
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def resolve_handler(reference: str) -> Handler:
    """Import ``package.module.function`` (a Lambda handler reference) and return the function."""
    module_name, _, attribute = reference.rpartition(".")
    if not module_name or not attribute:
        raise HandlerNotFound(f"handler reference {reference!r} is not of the form module.function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HandlerNotFound(f"cannot import {module_name!r} for handler {reference!r}: {exc}") from exc
    handler = getattr(module, attribute, None)
    if not callable(handler):
        raise HandlerNotFound(f"{module_name!r} has no callable {attribute!r}")
    return handler  # type: ignore[no-any-return]


def error_payload(exc: BaseException) -> dict[str, Any]:
    """The Lambda runtime's error document for an unhandled exception."""
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def invoke_handler(
    reference: str,
    event: Any,
    *,
    function_name: str,
    function_arn: str,
    environment: Mapping[str, str],
    memory_mb: int,
    timeout_s: float,
) -> tuple[str, bool]:
    """Call the handler with the function's environment; return (JSON payload, errored) like Lambda's
    Invoke."""
    context = LambdaContext(
        function_name=function_name,
        invoked_function_arn=function_arn,
        memory_limit_in_mb=memory_mb,
        timeout_s=timeout_s,
    )
    output: list[str] = []
    with _INVOKE_LOCK, patched_environ({**environment, "AWS_LAMBDA_FUNCTION_NAME": function_name}):
        try:
            with _captured(output):
                handler = resolve_handler(reference)
                result = handler(event, context)
            payload, errored = json.dumps(result, default=str), False
        except Exception as exc:  # the Lambda runtime reports every exception as a function error
            payload, errored = json.dumps(error_payload(exc)), True
    if output:
        try:
            ship_logs(function_name, context.aws_request_id, "".join(output))
        except Exception:  # losing a log line must not fail the invocation
            _log.warning("could not write the logs of %s", function_name, exc_info=True)
    return payload, errored
