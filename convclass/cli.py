"""``convclass``: drive training runs, approvals and classification on a deployed stack (``convclass-local``
runs the same pipeline on an embedded AWS).

Commands talk to AWS through boto3's usual configuration (profile, environment, SSO) and read resource ARNs
from the stack outputs: ``pulumi stack output --json > outputs.json`` then ``--outputs outputs.json`` (or
``CONVCLASS_OUTPUTS``), or one ``CONVCLASS_<OUTPUT>`` variable per output.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Column, Table

from convclass.errors import ConvclassError, InvalidInput, UnknownTenant, validated
from convclass.events import TrainingRunRequest
from convclass.operator import Operator
from convclass.operator.history import find_value
from convclass.stack import StackOutputs
from statemachine.history import entered_states

app = typer.Typer(
    name="convclass",
    no_args_is_help=True,
    add_completion=False,
    help="Per-customer support-email classifiers: train, approve, deploy and classify.",
)

console = Console()
err_console = Console(stderr=True)

OutputsOption = Annotated[
    Path | None,
    typer.Option(
        "--outputs",
        envvar="CONVCLASS_OUTPUTS",
        help="JSON file written by `pulumi stack output --json`.",
        dir_okay=False,
    ),
]
RegionOption = Annotated[str | None, typer.Option("--region", help="AWS region (default: the stack's).")]
TenantArg = Annotated[str, typer.Argument(help="Tenant id, e.g. acme.")]
ClassifierOption = Annotated[str, typer.Option("--classifier", "-c", help="Classifier id.")]


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False)
    return typer.Exit(code=2)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the named failures an operator can cause into one clear line and exit status 2."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ConvclassError, ValueError) as exc:
        raise _fail(str(exc)) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise _fail(
            f"AWS refused {exc.operation_name}: {error.get('Code')}: {error.get('Message')}"
        ) from None
    except BotoCoreError as exc:
        raise _fail(f"AWS request failed: {exc}") from None


def _operator(outputs: Path | None, region: str | None) -> Operator:
    return Operator(StackOutputs.load(outputs, region=region))


def _run_column() -> Column:
    """Run names are identifiers to copy into other commands: never wrapped or cut."""
    return Column("run", no_wrap=True, overflow="ignore")


def _print_json(value: Any) -> None:
    console.print_json(json.dumps(value, default=str))


@app.command()
def train(
    tenant: TenantArg,
    classifier: ClassifierOption = "default",
    label_field: Annotated[str, typer.Option(help="Label field of the conversations to learn.")] = "intent",
    source: Annotated[
        str, typer.Option(help="Where the export reads conversations: mongodb, opensearch or files.")
    ] = "mongodb",
    source_uri: Annotated[
        str | None, typer.Option(help="files only: s3:// URI of JSON Lines or Parquet files.")
    ] = None,
    business_key: Annotated[
        str | None,
        typer.Option(help="What makes this run unique, e.g. a date; the same key never starts a second run."),
    ] = None,
    export_approval: Annotated[bool, typer.Option(help="Wait for approval before exporting data.")] = False,
    deploy_approval: Annotated[bool, typer.Option(help="Wait for approval before deploying.")] = False,
    request_file: Annotated[
        Path | None,
        typer.Option("--request", help="JSON file with a full training run request (overrides the flags)."),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the run until it ends.")] = False,
    outputs: OutputsOption = None,
    region: RegionOption = None,
) -> None:
    """Start a training run with an idempotent name: repeating the command returns the run already started."""
    with _errors():
        request = _training_request(
            request_file,
            {
                "tenant": tenant,
                "classifier": classifier,
                "label_field": label_field,
                "data_source": {"kind": source, **({"uri": source_uri} if source_uri else {})},
                "options": {"export_approval": export_approval, "deploy_approval": deploy_approval},
                **({"business_key": business_key} if business_key else {}),
            },
        )
        operator = _operator(outputs, region)
        arn = operator.start_training(request)
        console.print(f"run [bold]{arn.rsplit(':', 1)[-1]}[/] started: {arn}")
        if wait:
            _follow(operator, arn)


def _training_request(request_file: Path | None, flags: dict[str, Any]) -> TrainingRunRequest:
    """The run request from a file (if given) or the flags, validated; errors name the offending fields."""
    document: Any = flags
    if request_file is not None:
        try:
            document = json.loads(request_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidInput(f"cannot read request file {str(request_file)!r}: {exc}") from None
    return validated(TrainingRunRequest, document, what="training run request")


def _follow(operator: Operator, arn: str, max_poll_s: float = 10.0) -> None:
    """Print every state the run enters (from its history, so short states are not missed) until it ends."""
    printed = 0
    announced: str | None = None
    poll_s = 0.5
    while True:
        detail = operator.describe_run(arn)
        entered = entered_states(operator.history(arn))
        for state in entered[printed:]:
            console.print(f"  → {state}")
        printed = len(entered)
        if detail.pending_token and detail.pending_token != announced:
            announced = detail.pending_token
            console.print(f"    waiting for approval at {detail.current_state}")
        if detail.summary.status != "RUNNING":
            break
        time.sleep(poll_s)
        poll_s = min(max_poll_s, poll_s * 1.5)
    colour = "green" if detail.summary.status == "SUCCEEDED" else "red"
    console.print(
        f"[{colour}]{detail.summary.status}[/]"
        + (f": {detail.error} {detail.cause or ''}" if detail.error else "")
    )
    if detail.summary.status != "SUCCEEDED":
        raise typer.Exit(code=1)


@app.command()
def runs(
    tenant: Annotated[str | None, typer.Argument(help="Only this tenant's runs.")] = None,
    classifier: Annotated[str | None, typer.Option("--classifier", "-c")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    outputs: OutputsOption = None,
    region: RegionOption = None,
) -> None:
    """List training runs, newest first."""
    with _errors():
        found = _operator(outputs, region).runs(tenant, classifier, limit)
        table = Table(_run_column(), "status", "started", "stopped")
        for run in found:
            table.add_row(run.name, run.status, str(run.started or ""), str(run.stopped or ""))
        console.print(table)


@app.command()
def status(
    tenant: TenantArg,
    classifier: ClassifierOption = "default",
    outputs: OutputsOption = None,
    region: RegionOption = None,
) -> None:
    """A tenant's latest runs, the state they are in, their metrics and the tenant's endpoint."""
    with _errors():
        operator = _operator(outputs, region)
        found = operator.runs(tenant, classifier, limit=5)
        endpoint = None
        try:
            endpoint = operator.endpoint(tenant, classifier)
        except ConvclassError:
            endpoint = None
        if not found and endpoint is None:
            raise _fail(f"unknown tenant/classifier {tenant}/{classifier}: no training runs and no endpoint")
        table = Table(
            _run_column(), "status", "state / outcome", "test accuracy", title=f"{tenant}/{classifier}"
        )
        for run in found:
            detail = operator.describe_run(run.arn)
            where = detail.current_state or detail.error or _outcome(detail.output)
            if detail.pending_token:
                where = f"{where} (approval pending)"
            table.add_row(run.name, run.status, where or "", _accuracy(detail.output))
        console.print(table)
        route = operator.shared_route(tenant, classifier) if found else None
        if route is not None:
            console.print(f"served by the shared endpoint [bold]{route[0]}[/] (TargetModel {route[1]})")
        if endpoint is None:
            console.print("endpoint: none deployed" if route is None else "own endpoint: none")
        else:
            console.print(
                f"endpoint: [bold]{endpoint.name}[/] {endpoint.status} (config {endpoint.config_name})"
                + (f" failure: {endpoint.failure_reason}" if endpoint.failure_reason else "")
            )


def _outcome(output: dict[str, Any] | None) -> str:
    value = find_value(output, "outcome")
    return str(value) if value is not None else ""


def _accuracy(output: dict[str, Any] | None) -> str:
    challenger = find_value(output, "challenger")
    value = find_value(challenger, "accuracy") if challenger is not None else find_value(output, "accuracy")
    return f"{float(value):.3f}" if isinstance(value, int | float) else ""


def _answer(
    approve: bool,
    token: str | None,
    execution: str | None,
    reason: str,
    outputs: Path | None,
    region: str | None,
) -> None:
    if (token is None) == (execution is None):
        raise _fail("give exactly one of --token or --execution")
    with _errors():
        operator = _operator(outputs, region)
        verdict = "approved" if approve else "rejected"
        if token is not None:
            operator.answer(token, approve=approve, reason=reason, approver=_whoami())
            console.print(verdict)
            return
        gate = operator.answer_pending(str(execution), approve=approve, reason=reason, approver=_whoami())
        note = {True: " (the run records the tenant's consent)", False: " (the run records the refusal)"}
        console.print(f"{gate} gate {verdict}" + (note[approve] if gate == "export" else ""))


@app.command()
def consent(
    tenant: TenantArg,
    classifier: ClassifierOption = "default",
    label_field: Annotated[
        str | None, typer.Option(help="Label field the approval covers (default: all of the classifier's).")
    ] = None,
    revoke: Annotated[bool, typer.Option("--revoke", help="Withdraw the approval.")] = False,
    outputs: OutputsOption = None,
    region: RegionOption = None,
) -> None:
    """Record (or revoke) a tenant's approval to use its conversations for training."""
    with _errors():
        key = _operator(outputs, region).record_consent(
            tenant, classifier, label_field, approver=_whoami(), revoke=revoke
        )
    console.print(("consent revoked: " if revoke else "consent recorded: ") + key)


def _whoami() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


TokenOption = Annotated[str | None, typer.Option("--token", help="Task token from the approval request.")]
ExecutionOption = Annotated[
    str | None, typer.Option("--execution", "-e", help="Run name or ARN waiting at an approval gate.")
]
ReasonOption = Annotated[str, typer.Option("--reason", help="Recorded with the decision.")]


@app.command()
def approve(
    token: TokenOption = None,
    execution: ExecutionOption = None,
    reason: ReasonOption = "",
    outputs: OutputsOption = None,
    region: RegionOption = None,
) -> None:
    """Approve a pending export or deployment gate."""
    _answer(True, token, execution, reason, outputs, region)


@app.command()
def reject(
    token: TokenOption = None,
    execution: ExecutionOption = None,
    reason: ReasonOption = "",
    outputs: OutputsOption = None,
    region: RegionOption = None,
) -> None:
    """Reject a pending gate: the run ends as ApprovalRejected."""
    _answer(False, token, execution, reason, outputs, region)


@app.command()
def classify(
    tenant: TenantArg,
    classifier: ClassifierOption = "default",
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", "-f", help="JSON Lines: one {subject, body, body_content_type} per line; - for stdin."
        ),
    ] = None,
    subject: Annotated[str | None, typer.Option(help="Subject of a single email.")] = None,
    body: Annotated[str | None, typer.Option(help="Body of a single email (HTML or text).")] = None,
    text: Annotated[bool, typer.Option("--text", help="The --body is plain text, not HTML.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the endpoint's predictions as JSON.")
    ] = False,
    outputs: OutputsOption = None,
    region: RegionOption = None,
) -> None:
    """Classify emails with the tenant's deployed endpoint."""
    emails = _read_emails(file, subject, body, "text/plain" if text else "text/html")
    with _errors():
        predictions = _operator(outputs, region).classify(tenant, classifier, emails)
    if as_json:
        _print_json(predictions)
        return
    table = Table("#", "label", "probability", "model")
    for index, prediction in enumerate(predictions):
        labels = prediction.get("labels") or [{}]
        top = labels[0]
        table.add_row(
            str(prediction.get("id") or index),
            str(top.get("label", "?")),
            f"{float(top.get('probability', 0.0)):.3f}",
            str(prediction.get("model_version", "")),
        )
    console.print(table)


def _read_emails(
    file: Path | None, subject: str | None, body: str | None, content_type: str
) -> list[dict[str, Any]]:
    if file is None:
        if body is None:
            raise _fail("give --body (and optionally --subject) or --file")
        return [{"subject": subject, "body": body, "body_content_type": content_type}]
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot read {str(file)!r}: {exc.strerror}") from None
    emails: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            raise _fail(f"line {number} of the emails file is not JSON") from None
        if not isinstance(value, dict) or not isinstance(value.get("body"), str):
            raise _fail(f"line {number} of the emails file needs a string 'body'")
        emails.append(value)
    if not emails:
        raise _fail("the emails file holds no emails")
    return emails


@app.command()
def logs(
    run: Annotated[str, typer.Argument(help="Run name/ARN, or a training job name.")],
    tail: Annotated[int, typer.Option(min=1, help="Print at most this many last lines.")] = 200,
    outputs: OutputsOption = None,
    region: RegionOption = None,
) -> None:
    """Print a run's training log (the SageMaker training job's CloudWatch log)."""
    with _errors():
        operator = _operator(outputs, region)
        jobs: tuple[str, ...] = (run,)
        if run.startswith("arn:") or operator.outputs.training_state_machine_arn:
            try:
                jobs = operator.describe_run(run).training_jobs or (run,)
            except ConvclassError:
                jobs = (run,)
        lines = operator.training_log(jobs[-1])
    for line in lines[-tail:]:
        console.print(line, markup=False, highlight=False)


@app.command()
def redrive(
    run: Annotated[str, typer.Argument(help="Run name or ARN of a failed, timed-out or aborted run.")],
    outputs: OutputsOption = None,
    region: RegionOption = None,
) -> None:
    """Resume a failed run at the step that did not complete (Step Functions RedriveExecution)."""
    with _errors():
        arn = _operator(outputs, region).redrive(run)
    console.print(f"run {run} redriven: {arn}")


@app.command()
def describe(
    run: Annotated[str, typer.Argument(help="Run name or ARN.")],
    outputs: OutputsOption = None,
    region: RegionOption = None,
) -> None:
    """A run's status, current state, pending approval token and output as JSON."""
    with _errors():
        detail = _operator(outputs, region).describe_run(run)
    _print_json(
        {
            "name": detail.summary.name,
            "arn": detail.summary.arn,
            "status": detail.summary.status,
            "current_state": detail.current_state,
            "pending_token": detail.pending_token,
            "training_jobs": list(detail.training_jobs),
            "error": detail.error,
            "cause": detail.cause,
            "output": detail.output,
        }
    )


@app.command()
def cost(
    tenants: Annotated[int, typer.Option(min=1, help="Tenants hosted.")] = 1000,
    classifiers_per_tenant: Annotated[int, typer.Option(min=1, help="Classifiers per tenant.")] = 1,
    emails_per_month: Annotated[float, typer.Option(min=0, help="Emails per classifier and month.")] = 5000,
    model_mb: Annotated[float, typer.Option(min=0, help="Memory one loaded model adds (measured).")] = 0.5,
    cpu_ms_per_email: Annotated[float, typer.Option(min=0, help="Warm CPU ms per email (measured).")] = 10.0,
    instance_type: Annotated[str, typer.Option(help="Endpoint instance type.")] = "ml.c5.large",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Monthly hosting cost per tenant: dedicated, shared (multi-model) and serverless endpoints."""
    from convclass.hosting.cost import (
        PRICES_CHECKED_ON,
        REGION,
        ClassifierProfile,
        Fleet,
        Workload,
        recommend,
    )
    from convclass.hosting.cost import estimate as estimate_cost

    try:
        workload = Workload(
            tenants=tenants,
            classifiers_per_tenant=classifiers_per_tenant,
            emails_per_month=emails_per_month,
            model_mb=model_mb,
            cpu_ms_per_email=cpu_ms_per_email,
        )
        fleet = Fleet(instance_type=instance_type)
        report = estimate_cost(workload, fleet)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    advice = recommend(ClassifierProfile(emails_per_month=emails_per_month), workload, fleet)
    per_tenant = {
        "dedicated": round(report.dedicated, 4),
        "shared": round(report.shared, 4),
        "serverless": round(report.serverless, 4),
    }
    prices = f"on-demand {REGION}, checked {PRICES_CHECKED_ON.isoformat()}"
    figures = {
        "usd_per_tenant_month": per_tenant,
        "shared_instances": report.shared_plan.instances,
        "recommendation": advice.mode,
        "reason": advice.reason,
        "notes": report.notes,
        "prices": prices,
    }
    if as_json:
        _print_json(figures)
        return
    table = Table(
        title=f"{tenants} tenants x {classifiers_per_tenant} classifier(s), {emails_per_month:g} emails"
    )
    table.add_column("mode")
    table.add_column("USD per tenant-month", justify="right")
    for mode, value in per_tenant.items():
        table.add_row(mode, f"{value:,.2f}")
    console.print(table)
    console.print(f"recommended: {advice.mode} ({advice.reason})", highlight=False)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(prices, highlight=False)


@app.command()
def feedback(
    tenant: TenantArg,
    classifier: ClassifierOption = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    outputs: OutputsOption = None,
    region: RegionOption = None,
) -> None:
    """Live agreement with agents' final labels, drift, and the reasons of automatic training runs."""
    from datetime import UTC, datetime

    from convclass.feedback.report import feedback_report

    with _errors():
        report = feedback_report(_operator(outputs, region), tenant, classifier, datetime.now(UTC))
        if report is None:
            raise UnknownTenant(
                f"no deployed model for {tenant}/{classifier}: nothing to compare feedback with"
            )
        if as_json:
            _print_json(report)
            return
        _print_feedback(report)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _print_feedback(report: dict[str, Any]) -> None:
    deployed, drift = report["deployed"], report["drift"]
    console.print(
        f"[bold]{report['tenant']}/{report['classifier']}[/]: run {deployed['run_id']} "
        f"(test accuracy {_percent(deployed['test_accuracy'])}), feedback since {report['window'][0]}"
    )
    console.print(
        f"confirmations {report['confirmations']} ({report['matched']} with a prediction): "
        f"top-1 {_percent(report['top1'])}, top-3 {_percent(report['top3'])}"
    )
    labels = Table("label", "precision", "recall", "predicted", "confirmed")
    for label, q in report["per_label"].items():
        labels.add_row(
            label, _percent(q["precision"]), _percent(q["recall"]), str(q["predicted"]), str(q["confirmed"])
        )
    console.print(labels)
    coverage = Table("threshold", "auto-applied", "accuracy there")
    for band in report["coverage"]:
        coverage.add_row(f"{band['threshold']:.2f}", _percent(band["share"]), _percent(band["accuracy"]))
    console.print(coverage)
    psi = "-" if drift["psi"] is None else f"{drift['psi']:.3f} ({drift['band']})"
    trend = drift["top1_trend_points_per_day"]
    console.print(
        f"drift: PSI {psi} over {drift['predictions']} predictions; unknown labels "
        f"{drift['unknown_labels'] or 'none'}; top-1 trend "
        + ("-" if trend is None else f"{trend:+.1f} points/day")
    )
    console.print("rules firing now: " + ("; ".join(report["reasons"]) or "none"))
    if report["waiting"]:
        console.print("no automatic run while waiting for: " + "; ".join(report["waiting"]))
    runs = Table(_run_column(), "status", "started", "reason")
    for run in report["automatic_runs"]:
        runs.add_row(run["run"], run["status"], str(run["started"] or ""), run["reason"] or "")
    console.print(runs)


def main() -> None:
    app()
