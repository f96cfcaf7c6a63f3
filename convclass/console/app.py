"""The console's web app: server-rendered pages for one tenant per request.

Pages (GET): ``/`` overview, ``/runs``, ``/runs/{run}`` run detail, ``/approvals``,
``/c/{classifier}/models/{run}`` model card, ``/c/{classifier}/inference``, ``/c/{classifier}/history``,
``/c/{classifier}/feedback`` (agreement, drift and automatic runs: what ``convclass feedback`` prints,
from :func:`convclass.feedback.report.feedback_report`).
Decisions (POST, CSRF-protected, idempotent, logged with the actor): ``/runs/{run}/answer`` (approve or
reject the gate the run waits at) and ``/c/{classifier}/consent/withdraw``.

Unauthenticated requests get 401; anything that is not the token's tenant's gets the same 404 as something
that does not exist.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from convclass.console import charts
from convclass.console.auth import CSRF_FIELD, SESSION_COOKIE, NotAuthenticated, Principal, TokenVerifier
from convclass.console.data import ERROR_WORDS, NotFound, TenantView, model_run
from convclass.console.inference import read_stats
from convclass.events import Redeploy, TrainingRunRequest, execution_name
from convclass.feedback.report import feedback_report
from convclass.operator import Operator
from convclass.operator.approvals import NoPendingApproval
from convclass.operator.clients import OperatorError
from convclass.operator.runs import ExecutionNotFound

audit = logging.getLogger("convclass.console.audit")
#: Labels with fewer training examples than this are flagged on the model card.
FEW_EXAMPLES = 20
WORST_PAIRS = 8
NOTICES = {
    "approved": "Approved: the run goes on.",
    "rejected": "Rejected: the run ends as ApprovalRejected.",
    "stale": "That approval was already answered; nothing was changed.",
    "withdrawn": "Consent withdrawn: no export of this classifier's data runs until it is given again.",
    "already-withdrawn": "Consent was already withdrawn; nothing was changed.",
    "rollback-started": "Roll back started: the earlier model is being deployed by the pipeline.",
    "rollback-running": "That roll back was already started; nothing was changed.",
    "already-serving": "That model is already serving; nothing was changed.",
    "no-run": "A roll back reuses an earlier run's settings, and no run of this classifier is kept.",
}


@dataclass(frozen=True)
class ConsoleSettings:
    operator: Operator
    verifier: TokenVerifier
    #: EventBridge Scheduler group of the stack's retraining schedules (none: no schedules shown).
    schedule_group: str | None = None
    #: Send the session cookie over HTTPS only (every deployment; off for http://127.0.0.1).
    secure_cookie: bool = True
    inference_days: int = 14


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("convclass.console", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["duration"] = _duration
    env.filters["clock"] = lambda value: value.astimezone(UTC).strftime("%H:%M:%S") if value else "–"
    env.filters["pct"] = lambda value: "–" if value is None else f"{100 * float(value):.1f} %"
    return env


def _when(value: Any) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "running"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def _principal(request: Request) -> Principal:
    """The verified caller of a request: the bearer token, else the session cookie."""
    header = request.headers.get("authorization", "")
    token = (
        header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get(SESSION_COOKIE)
    )
    if not token:
        raise NotAuthenticated("no token")
    verifier: TokenVerifier = request.app.state.verifier
    return verifier.verify(token)


Caller = Annotated[Principal, Depends(_principal)]


def create_app(settings: ConsoleSettings) -> FastAPI:
    """The console app for one stack (its operator's clients) and one way of verifying tokens."""
    app = FastAPI(title="convclass console", docs_url=None, redoc_url=None, openapi_url=None)
    env = _env()
    operator, verifier = settings.operator, settings.verifier
    for service in ("s3", "stepfunctions", "sagemaker"):
        operator.client(service)  # create clients up front: request threads then share them

    app.state.verifier = verifier

    def view(who: Principal) -> TenantView:
        return TenantView(operator, who.tenant, schedule_group=settings.schedule_group)

    def render(template: str, who: Principal, status_code: int = 200, **context: Any) -> HTMLResponse:
        page = env.get_template(template).render(
            tenant=who.tenant, csrf=verifier.csrf_token(who), csrf_field=CSRF_FIELD, **context
        )
        return HTMLResponse(page, status_code=status_code, headers=_SECURITY_HEADERS)

    @app.exception_handler(NotAuthenticated)
    def _unauthenticated(_request: Request, exc: NotAuthenticated) -> Response:
        return PlainTextResponse(
            "401: sign in again (" + str(exc) + ")",
            status_code=401,
            headers={"WWW-Authenticate": "Bearer", **_SECURITY_HEADERS},
        )

    @app.exception_handler(NotFound)
    def _not_found(_request: Request, _exc: NotFound) -> Response:
        return PlainTextResponse("404: not found", status_code=404, headers=_SECURITY_HEADERS)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/login", include_in_schema=False)
    def login(token: str) -> Response:
        verifier.verify(token)
        response = RedirectResponse("/", status_code=303, headers=_SECURITY_HEADERS)
        response.set_cookie(
            SESSION_COOKIE, token, httponly=True, samesite="strict", secure=settings.secure_cookie, path="/"
        )
        return response

    @app.get("/", response_class=HTMLResponse)
    def overview(who: Caller) -> HTMLResponse:
        tenant = view(who)
        cards = []
        for classifier in tenant.classifiers():
            champion = tenant.champion(classifier)
            cards.append(
                {
                    "id": classifier,
                    "run": tenant.latest_run(classifier),
                    "champion": champion,
                    "model": model_run(champion) if champion else None,
                    # A shared classifier has no endpoint of its own: its champion record says so.
                    "endpoint": None
                    if champion is not None and champion.hosting == "shared"
                    else tenant.endpoint(classifier),
                    "schedule": tenant.schedule(classifier),
                    "consent": tenant.consent(classifier),
                }
            )
        return render("overview.html", who, title="Overview", classifiers=cards)

    @app.get("/runs", response_class=HTMLResponse)
    def runs(who: Caller) -> HTMLResponse:
        return render("runs.html", who, title="Runs", runs=view(who).runs())

    @app.get("/runs/{name}", response_class=HTMLResponse)
    def run_detail(name: str, who: Caller) -> HTMLResponse:
        tenant = view(who)
        run = tenant.run(name)
        steps = tenant.timeline(run)
        try:
            has_model = tenant.model(run.classifier, run.run_id) is not None
        except NotFound:
            has_model = False
        return render(
            "run.html",
            who,
            title=f"Run {run.name}",
            run=run,
            steps=steps,
            has_model=has_model,
            error_words=ERROR_WORDS.get(run.detail.error or "", run.detail.error),
        )

    @app.get("/approvals", response_class=HTMLResponse)
    def approvals(who: Caller, notice: str | None = None) -> HTMLResponse:
        tenant = view(who)
        consents = [(classifier, tenant.consent(classifier)) for classifier in tenant.classifiers()]
        return render(
            "approvals.html",
            who,
            title="Approvals",
            pending=tenant.pending(),
            consents=consents,
            notice=NOTICES.get(notice or ""),
        )

    @app.post("/runs/{name}/answer")
    def answer(
        name: str,
        who: Caller,
        decision: Annotated[str, Form()],
        approval: Annotated[str, Form()],
        csrf: Annotated[str, Form()] = "",
        reason: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:
        _check_csrf(verifier, who, csrf)
        if decision not in ("approve", "reject"):
            raise NotFound("no such decision")
        run = view(who).run(name)
        outcome = "stale"
        if run.approval_id is not None and run.approval_id == approval and run.gate:
            try:
                # The run records an export gate's answer as the tenant's consent or refusal itself.
                operator.answer(
                    str(run.detail.pending_token),
                    approve=decision == "approve",
                    approver=f"console:{who.subject}",
                    reason=reason,
                )
                outcome = "approved" if decision == "approve" else "rejected"
            except NoPendingApproval:
                outcome = "stale"
        _audit(who, "answer", classifier=run.classifier, run=run.name, gate=run.gate, outcome=outcome)
        return RedirectResponse(f"/approvals?notice={outcome}", status_code=303, headers=_SECURITY_HEADERS)

    @app.post("/c/{classifier}/consent/withdraw")
    def withdraw_consent(classifier: str, who: Caller, csrf: Annotated[str, Form()] = "") -> Response:
        _check_csrf(verifier, who, csrf)
        tenant = view(who)
        tenant.where(classifier)
        current = tenant.consent(classifier)
        if current is None:
            raise NotFound("no consent recorded")
        outcome = "already-withdrawn"
        if current.approved and current.revoked_at is None:
            operator.record_consent(
                who.tenant, classifier, None, approver=f"console:{who.subject}", revoke=True
            )
            outcome = "withdrawn"
        _audit(who, "withdraw-consent", classifier=classifier, outcome=outcome)
        return RedirectResponse(f"/approvals?notice={outcome}", status_code=303, headers=_SECURITY_HEADERS)

    @app.post("/c/{classifier}/rollback")
    def rollback(
        classifier: str,
        who: Caller,
        model: Annotated[str, Form(max_length=64)],
        csrf: Annotated[str, Form()] = "",
    ) -> Response:
        """Deploy an earlier model through the training pipeline (a run whose request names the model)."""
        _check_csrf(verifier, who, csrf)
        tenant = view(who)
        tenant.where(classifier)
        deployments = tenant.deployments(classifier)
        target = next((record for record in deployments if model_run(record) == model), None)
        if target is None:
            raise NotFound("no such deployed model")
        outcome = "already-serving"
        if model_run(deployments[0]) != model:
            latest = next(iter(tenant.runs(classifier)), None)
            outcome = (
                "no-run" if latest is None else _start_rollback(operator, latest[1], deployments[0], target)
            )
        _audit(who, "rollback", classifier=classifier, model=model, outcome=outcome)
        return RedirectResponse(
            f"/c/{classifier}/history?notice={outcome}", status_code=303, headers=_SECURITY_HEADERS
        )

    @app.get("/c/{classifier}/models/{run_id}", response_class=HTMLResponse)
    def model_card(classifier: str, run_id: str, who: Caller) -> HTMLResponse:
        card = view(who).model_card(classifier, run_id)
        metrics = card.metrics
        train_counts = dict(card.dataset.split_counts.get("train", {})) if card.dataset else {}
        distribution = sorted(
            ((label, float(count), count < FEW_EXAMPLES) for label, count in train_counts.items()),
            key=lambda row: -row[1],
        )
        per_label = sorted(metrics.per_label.items(), key=lambda item: (item[1].f1, item[0]))
        curves = {
            name: [(row["epoch"], row[name]) for row in card.epochs if name in row]
            for name in ("loss", "val_loss", "accuracy", "val_accuracy")
        }
        return render(
            "model.html",
            who,
            title=f"Model {run_id}",
            classifier=classifier,
            card=card,
            metrics=metrics,
            per_label=per_label,
            pairs=_confused_pairs(metrics.labels, metrics.confusion_matrix),
            dropped=(card.dataset.dropped_labels if card.dataset else {}),
            distribution_chart=charts.hbars("Training examples per label", distribution)
            if distribution
            else None,
            f1_chart=charts.hbars(
                "F1 per label, worst first",
                [(label, m.f1, m.f1 < 0.5) for label, m in per_label[:25]],
                maximum=1.0,
                fmt="{:.2f}",
            ),
            heatmap=charts.heatmap(
                "Confusion matrix, row-normalised: rows are true labels, columns predicted labels",
                metrics.labels,
                metrics.confusion_matrix,
            ),
            loss_chart=charts.lines("Loss per epoch", {k: v for k, v in curves.items() if "loss" in k and v}),
            accuracy_chart=charts.lines(
                "Accuracy per epoch", {k: v for k, v in curves.items() if "accuracy" in k and v}
            ),
            few=FEW_EXAMPLES,
        )

    @app.get("/c/{classifier}/inference", response_class=HTMLResponse)
    def inference(classifier: str, who: Caller) -> HTMLResponse:
        tenant = view(who)
        where = tenant.where(classifier)
        stats = read_stats(operator.client("s3"), tenant.bucket, where, days=settings.inference_days)
        if stats.classified + stats.failed == 0 and classifier not in tenant.classifiers():
            raise NotFound("no such classifier")
        top_labels = [label for label, _ in stats.labels.most_common(6)]
        return render(
            "inference.html",
            who,
            title=f"Inference · {classifier}",
            classifier=classifier,
            stats=stats,
            top_labels=top_labels,
            per_day_chart=charts.columns(
                "Emails classified per day",
                [(d.day.strftime("%m-%d"), float(d.classified)) for d in stats.days],
            ),
            labels_chart=charts.hbars(
                "Predicted labels", [(label, float(n), False) for label, n in stats.labels.most_common(20)]
            ),
            confidence_chart=charts.columns(
                "Confidence of the top label: emails per probability bin of 0.1",
                [(f"{i / 10:.1f}", float(n)) for i, n in enumerate(stats.confidence)],
            ),
        )

    @app.get("/c/{classifier}/history", response_class=HTMLResponse)
    def history(classifier: str, who: Caller, notice: str | None = None) -> HTMLResponse:
        tenant = view(who)
        tenant.where(classifier)
        deployments = tenant.deployments(classifier)
        models = tenant.models(classifier)
        if not deployments and not models and classifier not in tenant.classifiers():
            raise NotFound("no such classifier")
        figures = {}
        for ref in models:
            try:
                figures[ref.run_id] = tenant.model_files(ref).metrics
            except NotFound:
                continue
        return render(
            "history.html",
            who,
            title=f"History · {classifier}",
            classifier=classifier,
            deployments=[(record, model_run(record)) for record in deployments],
            models=models,
            figures=figures,
            deployed_runs={model_run(record) for record in deployments},
            current=model_run(deployments[0]) if deployments else None,
            notice=NOTICES.get(notice or ""),
        )

    @app.get("/c/{classifier}/feedback", response_class=HTMLResponse)
    def feedback(classifier: str, who: Caller) -> HTMLResponse:
        tenant = view(who)
        tenant.where(classifier)
        report = feedback_report(operator, who.tenant, classifier, datetime.now(UTC), read_only=True)
        if report is None and classifier not in tenant.classifiers():
            raise NotFound("no such classifier")
        return render(
            "feedback.html", who, title=f"Feedback · {classifier}", classifier=classifier, report=report
        )

    @app.middleware("http")
    async def timing(request: Request, call_next: Callable[[Request], Any]) -> Response:
        started = time.perf_counter()
        response: Response = await call_next(request)
        response.headers["Server-Timing"] = f"app;dur={1000 * (time.perf_counter() - started):.1f}"
        return response

    return app


_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _start_rollback(operator: Operator, earlier: TrainingRunRequest, current: Any, target: Any) -> str:
    """Start the roll back run; the same roll back from the same serving model is one execution."""
    digest = hashlib.sha256(f"{target.model_artifacts}|{current.model_artifacts}".encode()).hexdigest()[:20]
    request = earlier.model_copy(
        update={
            "options": earlier.options.model_copy(
                update={"export_approval": False, "deploy_approval": False}
            ),
            "business_key": f"rollback-{digest}",
            "redeploy": Redeploy(
                run_id=model_run(target),
                model_artifacts=target.model_artifacts,
                training_job_name=target.training_job_name,
            ),
        }
    )
    request = TrainingRunRequest.model_validate(request.model_dump())
    try:
        operator.describe_run(execution_name(request))
        return "rollback-running"
    except ExecutionNotFound:
        pass
    try:
        # Two clicks at once start one execution: the name is idempotent for the same input.
        operator.start_training(request)
    except OperatorError:
        return "rollback-running"
    return "rollback-started"


def _check_csrf(verifier: TokenVerifier, who: Principal, value: str) -> None:
    if not verifier.csrf_ok(who, value):
        _audit(who, "refused", outcome="csrf")
        raise NotAuthenticated("the form's CSRF token is missing or wrong; reload the page")


def _audit(who: Principal, action: str, **fields: Any) -> None:
    """One JSON line per decision: who, which tenant, what, and how it ended (never free text)."""
    audit.info(
        json.dumps({"action": action, "tenant": who.tenant, "actor": who.subject, **fields}, default=str)
    )


def _confused_pairs(
    labels: tuple[str, ...], matrix: tuple[tuple[int, ...], ...]
) -> list[tuple[str, str, int]]:
    """The most frequent (true, predicted) mistakes."""
    pairs = [
        (labels[i], labels[j], count)
        for i, row in enumerate(matrix)
        for j, count in enumerate(row)
        if i != j and count > 0
    ]
    return sorted(pairs, key=lambda pair: (-pair[2], pair[0], pair[1]))[:WORST_PAIRS]


def page_urls(tenant: TenantView) -> Iterator[str]:
    """Every GET page of a tenant (the cross-tenant tests and the benchmark request all of them)."""
    yield "/"
    yield "/runs"
    yield "/approvals"
    for summary, _ in tenant.runs():
        yield f"/runs/{summary.name}"
    for classifier in tenant.classifiers():
        yield f"/c/{classifier}/inference"
        yield f"/c/{classifier}/history"
        yield f"/c/{classifier}/feedback"
        for ref in tenant.models(classifier):
            yield f"/c/{classifier}/models/{ref.run_id}"


def scoped_urls(tenant: TenantView) -> Iterator[tuple[str, str]]:
    """(method, URL) of every request that names one of the tenant's objects: another tenant gets 404 for
    each (the POSTs with a valid CSRF token and form of its own)."""
    yield from (("GET", url) for url in page_urls(tenant) if url not in ("/", "/runs", "/approvals"))
    for run in tenant.pending():
        yield "POST", f"/runs/{run.name}/answer"
    for classifier in tenant.classifiers():
        yield "POST", f"/c/{classifier}/consent/withdraw"
        yield "POST", f"/c/{classifier}/rollback"


#: What a POST in the cross-tenant checks sends besides the CSRF token (every form field of every action).
GUESSED_FORM = {"decision": "approve", "approval": "guess", "reason": "x", "model": "guess"}
