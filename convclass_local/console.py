"""``convclass-local console``: the customer console against the embedded AWS a demo left in its work dir.

The runtime restores the work directory's data (models, champions, consent, archived inference events and
endpoints); the console is served on localhost with a token per tenant found in the bucket, signed with the
work directory's own secret. Ctrl-C stops the server, and closing the runtime stops everything it started.

:func:`build_demo_state` creates a two-tenant state with real runs (the browser tests and
``make bench-console`` use it): each tenant trains and deploys a model through the real pipeline, the first
tenant's second run waits at its deployment gate, and a few inbound emails per tenant are classified.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from rich.console import Console

from convclass import layout
from convclass.console.app import ConsoleSettings, create_app
from convclass.console.auth import TokenVerifier, workdir_secret
from convclass.events import (
    execution_name,
)
from convclass.operator import Operator
from convclass_local.demo import DEMO_CLASSIFIER, DEMO_HYPERPARAMETERS, DEMO_TENANT
from convclass_local.demo.training import drop_snapshot, sample_request
from convclass_local.embedded import free_port
from convclass_local.runtime import LocalRuntime

HOST = "127.0.0.1"
#: The console's demo tenants: the `make demo` shop and a second business with its own classifier id.
SECOND_TENANT = "globex"
SECOND_CLASSIFIER = "topic"
DEMO_TENANTS: tuple[tuple[str, str], ...] = (
    (DEMO_TENANT, DEMO_CLASSIFIER),
    (SECOND_TENANT, SECOND_CLASSIFIER),
)
LABEL_FIELD = "intent"


def tenants_in(runtime: LocalRuntime) -> list[str]:
    """The tenants with data in the local bucket."""
    s3 = runtime.aws.client("s3")
    found = s3.list_objects_v2(Bucket=runtime.bucket, Prefix=layout.TENANTS_ROOT, Delimiter="/")
    names = [
        item["Prefix"][len(layout.TENANTS_ROOT) :].rstrip("/") for item in found.get("CommonPrefixes", [])
    ]
    return sorted(name for name in names if _valid(name))


def _valid(tenant: str) -> bool:
    try:
        layout.validate_id(tenant, "tenant id")
    except ValueError:
        return False
    return True


def console_app_for(runtime: LocalRuntime) -> tuple[Any, TokenVerifier]:
    verifier = TokenVerifier(secret=workdir_secret(runtime.workdir))
    settings = ConsoleSettings(operator=Operator(runtime.outputs), verifier=verifier, secure_cookie=False)
    return create_app(settings), verifier


@dataclass
class ConsoleServer:
    """The console app on a uvicorn server in a background thread (tests and the benchmark)."""

    app: Any
    port: int = field(default_factory=free_port)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> ConsoleServer:
        config = uvicorn.Config(self.app, host=HOST, port=self.port, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="convclass-console", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the console server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server, self._thread = None, None

    def __enter__(self) -> ConsoleServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def serve(runtime: LocalRuntime, *, port: int, console: Console) -> None:
    """Serve the console in the foreground until Ctrl-C (uvicorn handles the signal and returns)."""
    app, verifier = console_app_for(runtime)
    tenants = tenants_in(runtime)
    console.print(f"convclass console on [bold]http://{HOST}:{port}/[/] (Ctrl-C stops it)")
    if not tenants:
        console.print("no tenant has data yet: run `make demo` first")
    for tenant in tenants:
        token = verifier.issue(tenant, f"local-{tenant}")
        console.print(
            f"  {tenant}: http://{HOST}:{port}/login?token={token}", soft_wrap=True, highlight=False
        )
    config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", access_log=False)
    uvicorn.Server(config).run()


# --- a two-tenant state with real runs --------------------------------------------------------------------
@dataclass(frozen=True)
class DemoState:
    """What :func:`build_demo_state` left: run names per tenant and the run waiting at its deployment gate."""

    runs: Mapping[str, tuple[str, ...]]
    waiting: str


def _request(runtime: LocalRuntime, tenant: str, classifier: str, seed: int, emails: int, epochs: int) -> str:
    from convclass_local.generator import generate_emails

    records = generate_emails(emails, seed=seed, tenant_id=tenant, label_field=LABEL_FIELD)
    uri = drop_snapshot(runtime, records, f"sources/{tenant}/{seed}/")
    request = sample_request(
        uri,
        {**DEMO_HYPERPARAMETERS, "epochs": str(epochs)},
        business_key=f"console-{seed}",
        tenant=tenant,
        classifier=classifier,
        # A few epochs on small data score close to each other: the comparison must not reject the
        # second run's model, whose deployment gate the console is shown (and the tests approve) with.
        min_accuracy=0.0,
        tolerance=1.0,
    )
    Operator(runtime.outputs).start_training(request)
    return execution_name(request)


def drive(
    operator: Operator, names: list[str], *, approve_deployment: bool, timeout_s: float = 900
) -> dict[str, str]:
    """Answer the runs' gates until each ends (or, with ``approve_deployment`` off, waits at that gate)."""
    deadline = time.monotonic() + timeout_s
    ended: dict[str, str] = {}
    while len(ended) < len(names):
        if time.monotonic() > deadline:
            raise TimeoutError(f"runs did not end in {timeout_s:.0f}s: {sorted(set(names) - set(ended))}")
        for name in names:
            if name in ended:
                continue
            detail = operator.describe_run(name)
            if detail.summary.status != "RUNNING":
                ended[name] = detail.summary.status
                continue
            if detail.pending_token:
                gate = str((detail.pending_request or {}).get("gate", ""))
                if gate == "deployment" and not approve_deployment:
                    ended[name] = "WAITING"
                    continue
                operator.answer(detail.pending_token, approve=True, approver="demo")
        time.sleep(0.3)
    return ended


def classify_some(runtime: LocalRuntime, tenant: str, classifier: str, count: int, seed: int) -> None:
    """Send ``count`` generated emails for the tenant through the inbound queue (the Pipe classifies them)."""
    from convclass_local.demo.inbound import send_inbound
    from convclass_local.generator import generate_emails

    runtime.endpoints.ensure(layout.endpoint_name(tenant, classifier))
    send_inbound(
        runtime,
        tenant,
        classifier,
        generate_emails(count, seed=seed, tenant_id=tenant, label_field=LABEL_FIELD),
    )


def build_demo_state(
    runtime: LocalRuntime, *, emails: int = 600, epochs: int = 3, inbound: int = 12
) -> DemoState:
    """Two tenants with a deployed model each, and the first tenant's second run waiting for deployment."""
    operator = Operator(runtime.outputs)
    first = [_request(runtime, tenant, classifier, 1, emails, epochs) for tenant, classifier in DEMO_TENANTS]
    results = drive(operator, first, approve_deployment=True)
    if set(results.values()) != {"SUCCEEDED"}:
        failures = {
            name: (detail.error, detail.cause)
            for name, status in results.items()
            if status != "SUCCEEDED" and (detail := operator.describe_run(name))
        }
        raise RuntimeError(f"the first runs did not deploy: {results}; errors: {failures}")
    for seed, (tenant, classifier) in enumerate(DEMO_TENANTS, start=100):
        classify_some(runtime, tenant, classifier, inbound, seed)
    wait_for_archive(runtime, inbound * len(DEMO_TENANTS))
    (tenant, classifier) = DEMO_TENANTS[0]
    second = _request(runtime, tenant, classifier, 2, emails, epochs)
    waiting = drive(operator, [second], approve_deployment=False)
    if waiting[second] != "WAITING":
        error = operator.describe_run(second).error
        raise RuntimeError(f"the second run did not reach its deployment gate: {waiting} ({error})")
    return DemoState(
        runs={DEMO_TENANTS[0][0]: (first[0], second), DEMO_TENANTS[1][0]: (first[1],)}, waiting=second
    )


def wait_for_archive(runtime: LocalRuntime, expected: int, timeout_s: float = 120) -> int:
    """Wait until ``expected`` inference events were archived (or the time is up); return how many were."""
    deadline = time.monotonic() + timeout_s
    while runtime.archived_events < expected and time.monotonic() < deadline:
        time.sleep(0.2)
    return runtime.archived_events
