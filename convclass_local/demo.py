"""``convclass-local demo``: one tenant's whole life on an embedded AWS, narrated.

A sample online shop drops a snapshot of its labelled support emails (seeded, realistic HTML); a training
request goes onto the training queue, the starter starts the real training pipeline, the approval gates are
answered, the real training entrypoint trains a model, the pipeline deploys it to the tenant's endpoint (the
real serving app), and new inbound emails go through the inbound queue and the inference workflow. The run's
events are read from the bus the way a tenant's integration would. A second run retrains: its challenger meets
the first run's champion.

The last line printed is one JSON object (status, execution_arn, test_accuracy, endpoint, classified, seconds
...).
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.prompt import Confirm
from rich.table import Table

from convclass import layout
from convclass.artifacts import METRICS_FILE, REPORT_DIR, extract_model_tar, read_metrics
from convclass.deployment import INBOUND_BATCH_SIZE, sse_kms
from convclass.events import (
    EMAIL_CLASSIFICATION_FAILED,
    EMAIL_CLASSIFIED,
    INFERENCE_SOURCE,
    PIPELINE_SOURCE,
    RUN_FAILED,
    RUN_SUCCEEDED,
    ChampionRecord,
    DataSource,
    RunOptions,
    TrainingRunRequest,
    execution_name,
    inbound_max_message_bytes,
)
from convclass.inbound import inbound_message
from convclass.operator import Operator
from convclass.operator.history import pending_state
from convclass.serving.schemas import EmailIn
from convclass_local.runtime import LocalRuntime
from convclass_local.stack import function_name

DEMO_TENANT = "acme-shop"
DEMO_CLASSIFIER = "intent"
DEMO_LABEL_FIELD = "intent"
#: The small convolutional model trains in seconds on two cores; the pretrained MiniLM is the production
#: default.
DEMO_HYPERPARAMETERS: Mapping[str, str] = {"architecture": "cnn", "epochs": "6", "max_length": "64"}
APPROVER = "convclass-local demo"
#: The starter answers a queued request within seconds; longer means it failed (its log says why).
_START_TIMEOUT_S = 60.0
_EPOCH_LINE = re.compile(r"convclass-epoch .*\bepoch=(\d+)\b.*\bof=(\d+)")
_VAL_ACCURACY = re.compile(r"\bval_accuracy=([0-9.eE+-]+)")


@dataclass(frozen=True)
class DemoOptions:
    workdir: Path
    emails: int = 3000
    inbound: int = 8
    interactive: bool = False
    hyperparameters: Mapping[str, str] = field(default_factory=lambda: dict(DEMO_HYPERPARAMETERS))
    timeout_s: float = 900.0
    console: Console | None = None


@dataclass
class DemoResult:
    """The figures the summary and the last JSON line report."""

    status: str = "NOT_STARTED"
    execution_arn: str | None = None
    outcome: str | None = None
    error: str | None = None
    test_accuracy: float | None = None
    champion_accuracy: float | None = None
    endpoint: str | None = None
    classified: int = 0
    failed: int = 0
    report: str | None = None
    run: int = 1
    seconds: float = 0.0
    predictions: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "execution_arn": self.execution_arn,
            "outcome": self.outcome,
            "error": self.error,
            "test_accuracy": self.test_accuracy,
            "champion_accuracy": self.champion_accuracy,
            "endpoint": self.endpoint,
            "classified": self.classified,
            "classification_failed": self.failed,
            "report": self.report,
            "run": self.run,
            "seconds": round(self.seconds, 1),
        }


class _TrainingProgress:
    """Turns the training job's metric log lines into a progress bar (called on the job's thread)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None
        self._lock = threading.Lock()

    def __call__(self, _job: str, line: str) -> None:
        match = _EPOCH_LINE.search(line)
        if not match:
            return
        epoch, total = int(match.group(1)), int(match.group(2))
        accuracy = _VAL_ACCURACY.search(line)
        label = "training" + (f" (val acc {float(accuracy.group(1)):.3f})" if accuracy else "")
        with self._lock:
            if self._task is None:
                self._task = self._progress.add_task(label, total=total)
            self._progress.update(self._task, completed=epoch, total=total, description=label)


def run_demo(options: DemoOptions) -> int:
    """Run the demo; returns the process exit status (0 when the run succeeded and emails were classified)."""
    console = options.console or Console()
    started = time.monotonic()
    result = DemoResult()
    progress = Progress(
        TextColumn("  {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    runtime = LocalRuntime(workdir=options.workdir, training_listener=_TrainingProgress(progress))
    try:
        with _interrupt_on_terminate(), runtime:
            _Demo(runtime, options, console, progress, result).run()
    except KeyboardInterrupt:
        progress.stop()
        console.print("[yellow]interrupted: stopped every execution, process and server this run started[/]")
        result.status = "INTERRUPTED"
        result.seconds = time.monotonic() - started
        print(json.dumps(result.as_json()), flush=True)
        return 130
    result.seconds = time.monotonic() - started
    _summary(console, result, runtime.workdir)
    print(json.dumps(result.as_json()), flush=True)
    # A challenger rejected by the comparison ends SUCCEEDED (outcome "rejected"): the champion keeps serving.
    return 0 if result.status == "SUCCEEDED" and result.failed == 0 and result.endpoint else 1


class _Demo:
    def __init__(
        self,
        runtime: LocalRuntime,
        options: DemoOptions,
        console: Console,
        progress: Progress,
        result: DemoResult,
    ) -> None:
        self.runtime, self.options, self.console, self.progress, self.result = (
            runtime,
            options,
            console,
            progress,
            result,
        )
        self.operator = Operator(runtime.outputs)
        self.aws = runtime.aws
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        self.console.print(f"[dim]{time.monotonic() - self.started:6.1f}s[/] {text}")

    def run(self) -> None:
        outputs, bucket = self.runtime.outputs, self.runtime.bucket
        self.say(
            f"embedded AWS on [bold]{self.aws.endpoint_url}[/]: bucket, KMS key, queues + DLQs, bus, "
            f"5 functions and 2 state machines created; stack outputs in {self.runtime.outputs_path}"
        )
        champion = self._champion()
        reports = self.runtime.workdir / "reports"
        self.result.run = 1 + (sum(1 for p in reports.iterdir() if p.is_dir()) if reports.is_dir() else 0)
        if champion is not None:
            self.say(
                f"restored the previous run's data ({self.runtime.restored_objects} objects): endpoint "
                f"[bold]{champion['endpoint']}[/] serves run "
                f"{champion['run_id']} (test accuracy {champion['accuracy']:.3f}) — this run retrains"
            )
        observer = self._observe_bus()
        uri = self._drop_snapshot(bucket)
        request = self._request(uri)
        name = execution_name(request)
        self.result.execution_arn = self.operator.execution_arn(name)
        self.aws.client("sqs").send_message(
            QueueUrl=outputs.require("training_queue_url"), MessageBody=request.model_dump_json()
        )
        self.say(f"training request queued → starter → execution [bold]{name}[/]")
        with self.progress:
            self._follow(self.result.execution_arn)
        outcome = self._outcome(observer)
        self._report(name)
        endpoint = layout.endpoint_name(DEMO_TENANT, DEMO_CLASSIFIER)
        if self._endpoint_exists(endpoint):
            self.result.endpoint = endpoint
            self._classify(endpoint, observer)
        elif outcome is not None:
            self.say("[red]no endpoint is deployed: nothing to classify[/]")

    # --- set-up ---------------------------------------------------------------------------------------------
    def _champion(self) -> dict[str, Any] | None:
        """The model behind the tenant's endpoint, if an earlier run deployed one."""
        where = layout.ClassifierLayout(DEMO_TENANT, DEMO_CLASSIFIER)
        s3 = self.aws.client("s3")
        try:
            body = s3.get_object(Bucket=self.runtime.bucket, Key=where.champion_key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        record = ChampionRecord.model_validate_json(body)
        return {
            "endpoint": layout.endpoint_name(DEMO_TENANT, DEMO_CLASSIFIER),
            "run_id": record.run_id,
            "accuracy": record.metrics.accuracy,
        }

    def _observe_bus(self) -> str:
        """A queue subscribed to the pipeline and inference events, as a tenant's integration would be."""
        sqs, events = self.aws.client("sqs"), self.aws.client("events")
        url = sqs.create_queue(QueueName="convclass-demo-observer")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bus = self.runtime.outputs.require("event_bus_name")
        events.put_rule(
            Name="convclass-demo-observer",
            EventBusName=bus,
            EventPattern=json.dumps({"source": [PIPELINE_SOURCE, INFERENCE_SOURCE]}),
        )
        events.put_targets(
            Rule="convclass-demo-observer", EventBusName=bus, Targets=[{"Id": "observer", "Arn": arn}]
        )
        return str(url)

    def _drop_snapshot(self, bucket: str) -> str:
        """Today's snapshot of the tenant's labelled conversations, dropped for the files source."""
        from convclass_local.generator import generate_emails, template_labels, write_parquet

        seed = self.result.run
        records = generate_emails(
            self.options.emails, seed=seed, tenant_id=DEMO_TENANT, label_field=DEMO_LABEL_FIELD
        )
        local = self.runtime.workdir / "data" / f"{DEMO_TENANT}-snapshot.parquet"
        local.parent.mkdir(parents=True, exist_ok=True)
        write_parquet(records, local)
        prefix = f"sources/{DEMO_TENANT}/"
        self.aws.client("s3").upload_file(
            str(local),
            bucket,
            f"{prefix}snapshot.parquet",
            ExtraArgs=sse_kms(self.runtime.outputs.require("kms_key_arn")),
        )
        labels = len({r["labels"][DEMO_LABEL_FIELD] for r in records})
        self.say(
            f"sample tenant [bold]{DEMO_TENANT}[/]: {len(records)} support emails (HTML, quoted replies, "
            f"signatures, PII) over {labels} of {len(template_labels())} intents → s3://{bucket}/{prefix}"
        )
        return f"s3://{bucket}/{prefix}"

    def _request(self, uri: str) -> TrainingRunRequest:
        return TrainingRunRequest(
            tenant=DEMO_TENANT,
            classifier=DEMO_CLASSIFIER,
            label_field=DEMO_LABEL_FIELD,
            data_source=DataSource(kind="files", uri=uri),
            options=RunOptions(
                export_approval=True,
                deploy_approval=True,
                full_export=True,
                managed_spot=False,
                training_instance_type="ml.m5.xlarge",
                hyperparameters=dict(self.options.hyperparameters),
                hosting="dedicated",  # the demo classifies through the tenant's own endpoint
            ),
            business_key="demo-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S"),
        )

    # --- the run
    # ----------------------------------------------------------------------------------------------
    def _follow(self, arn: str) -> None:
        sfn = self.aws.client("stepfunctions")
        deadline = time.monotonic() + self.options.timeout_s
        seen = 0
        answered: set[str] = set()
        described: dict[str, Any] = {"status": "RUNNING"}
        start_deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                described = sfn.describe_execution(executionArn=arn)
            except sfn.exceptions.ExecutionDoesNotExist:
                if time.monotonic() > start_deadline:
                    self.result.status, self.result.error = "NOT_STARTED", "StarterFailed"
                    self.say(
                        "[red]the starter did not start the run[/]: see the log group "
                        f"{layout.lambda_log_group(function_name('starter'))} and the training queue's DLQ"
                    )
                    return
                time.sleep(0.1)  # the starter has not started it yet
                continue
            history = self.operator.history(arn)
            for event in history[seen:]:
                self._narrate(event)
            seen = len(history)
            _, token, pending = pending_state(history)
            if described["status"] == "RUNNING" and token and token not in answered:
                answered.add(token)
                self._answer(token, pending or {})
            if described["status"] != "RUNNING":
                break
            time.sleep(0.2)
        else:
            self.say(f"[red]the run did not finish within {self.options.timeout_s:.0f}s: stopping it[/]")
            sfn.stop_execution(executionArn=arn, error="DemoTimeout", cause="the demo's time limit passed")
            described = sfn.describe_execution(executionArn=arn)
        self.result.status = str(described["status"])
        self.result.error = described.get("error")
        colour = "green" if self.result.status == "SUCCEEDED" else "red"
        self.say(
            f"execution [{colour}]{self.result.status}[/]"
            + (f": {self.result.error}" if self.result.error else "")
        )

    def _narrate(self, event: Mapping[str, Any]) -> None:
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered"):
            self.say(f"→ {event.get('stateEnteredEventDetails', {}).get('name')}")
        elif kind == "TaskFailed":
            details = event.get("taskFailedEventDetails", {})
            self.say(f"  [yellow]task failed: {details.get('error')}[/] (the workflow handles it)")

    def _answer(self, token: str, request: Mapping[str, Any]) -> None:
        gate = str(request.get("gate", "approval"))
        evaluation = request.get("evaluation") or {}
        what = f"{gate} approval requested"
        if isinstance(evaluation, Mapping) and evaluation.get("challenger"):
            challenger = evaluation["challenger"].get("accuracy")
            champion = (evaluation.get("champion") or {}).get("accuracy")
            what += f": challenger accuracy {challenger:.3f}" + (
                f" vs champion {champion:.3f}" if champion is not None else " (no champion yet)"
            )
        if self.options.interactive:
            self.progress.stop()
            approve = Confirm.ask(f"  {what}. Approve?", console=self.console, default=True)
            self.progress.start()
        else:
            approve = True
        self.operator.answer(token, approve=approve, approver=APPROVER, reason="demo")
        self.say(f"  {what} → {'[green]approved[/]' if approve else '[red]rejected[/]'}")

    def _outcome(self, observer: str) -> dict[str, Any] | None:
        """The run's outcome event, as published on the bus."""
        for event in _drain(
            self.aws.client("sqs"), observer, lambda e: e["detail-type"] in (RUN_SUCCEEDED, RUN_FAILED)
        ):
            detail: dict[str, Any] = event["detail"]
            self.result.outcome = detail.get("outcome")
            evaluation = detail.get("evaluation") or {}
            challenger = evaluation.get("challenger") or detail.get("metrics") or {}
            champion = evaluation.get("champion") or {}
            if challenger.get("accuracy") is not None:
                self.result.test_accuracy = float(challenger["accuracy"])
            if champion.get("accuracy") is not None:
                self.result.champion_accuracy = float(champion["accuracy"])
            if self.result.test_accuracy is None:
                self.say(f"outcome [bold]{self.result.outcome}[/]: {detail.get('error')}")
                return detail
            verdict = evaluation.get("reason") or detail.get("error") or ""
            self.say(
                f"outcome [bold]{self.result.outcome}[/]: challenger "
                f"{_fmt(self.result.test_accuracy)} vs champion {_fmt(self.result.champion_accuracy)}"
                + (f" — {verdict}" if verdict else "")
            )
            return detail
        return None

    def _report(self, name: str) -> None:
        """Unpack the trained model's report (curves, confusion matrix, summary) into the workdir."""
        s3 = self.aws.client("s3")
        where = layout.ClassifierLayout(DEMO_TENANT, DEMO_CLASSIFIER)
        prefix = where.model_output_prefix(layout.run_id_for_execution(name))
        listing = s3.list_objects_v2(Bucket=self.runtime.bucket, Prefix=prefix).get("Contents", [])
        archives = [item["Key"] for item in listing if item["Key"].endswith("model.tar.gz")]
        if not archives:
            return
        body = s3.get_object(Bucket=self.runtime.bucket, Key=archives[-1])["Body"].read()
        target = self.runtime.workdir / "reports" / layout.run_id_for_execution(name)
        extract_model_tar(body, target)
        report = target / REPORT_DIR
        self.result.report = str(report if report.is_dir() else target)
        if self.result.test_accuracy is None and (target / METRICS_FILE).is_file():
            # A run that ended before its outcome named the figures (a rejected gate) still trained a model.
            self.result.test_accuracy = read_metrics(target / METRICS_FILE).accuracy

    def _endpoint_exists(self, endpoint: str) -> bool:
        try:
            self.aws.client("sagemaker").describe_endpoint(EndpointName=endpoint)
        except Exception:
            return False
        return True

    def _classify(self, endpoint: str, observer: str) -> None:
        from convclass_local.generator import generate_emails

        self.say(f"starting the serving app for endpoint [bold]{endpoint}[/]")
        self.runtime.endpoints.ensure(endpoint)
        emails = generate_emails(
            self.options.inbound,
            seed=1000 + self.result.run,
            tenant_id=DEMO_TENANT,
            label_field=DEMO_LABEL_FIELD,
        )
        sqs = self.aws.client("sqs")
        queue = self.runtime.outputs.require("inbound_queue_url")
        expected = {email["conversation_id"]: email["labels"][DEMO_LABEL_FIELD] for email in emails}
        for start in range(0, len(emails), 10):
            sqs.send_message_batch(
                QueueUrl=queue,
                Entries=[
                    inbound_message(
                        entry_id=str(index),
                        tenant=DEMO_TENANT,
                        classifier=DEMO_CLASSIFIER,
                        conversation_id=email["conversation_id"],
                        email=EmailIn(
                            id=email["conversation_id"],
                            subject=email.get("subject"),
                            body=email["body"],
                            body_content_type=email.get("body_content_type", "text/html"),
                        ),
                        max_bytes=inbound_max_message_bytes(INBOUND_BATCH_SIZE),
                    )
                    for index, email in enumerate(emails[start : start + 10])
                ],
            )
        self.say(f"{len(emails)} new inbound emails sent to the inbound queue → Pipe → inference workflow")
        deadline = time.monotonic() + 180
        results: dict[str, dict[str, Any]] = {}
        while len(results) < len(emails) and time.monotonic() < deadline:
            for event in _drain(
                sqs,
                observer,
                lambda e: e["detail-type"] in (EMAIL_CLASSIFIED, EMAIL_CLASSIFICATION_FAILED),
                wait_s=1,
            ):
                detail = event["detail"]
                results[str(detail.get("conversation_id") or detail.get("message_id"))] = {
                    "type": event["detail-type"],
                    **detail,
                }
        table = Table("conversation", "expected", "predicted", "probability", title="inbound emails")
        for conversation, label in expected.items():
            outcome = results.get(conversation)
            if outcome is None or outcome["type"] != EMAIL_CLASSIFIED:
                self.result.failed += 1
                reason = "no answer" if outcome is None else str(outcome.get("error"))
                table.add_row(conversation, label, f"[red]{reason}[/]", "")
                continue
            predictions = (outcome.get("prediction") or {}).get("predictions") or [{}]
            top = (predictions[0].get("labels") or [{}])[0]
            predicted = str(top.get("label", "?"))
            self.result.classified += 1
            self.result.predictions.append(
                {"conversation_id": conversation, "expected": label, "predicted": predicted}
            )
            mark = "green" if predicted == label else "yellow"
            table.add_row(
                conversation, label, f"[{mark}]{predicted}[/]", f"{float(top.get('probability', 0)):.3f}"
            )
        self.console.print(table)


@contextmanager
def _interrupt_on_terminate() -> Iterator[None]:
    """SIGTERM (a closing terminal, ``kill``) stops the demo as cleanly as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _drain(
    sqs: Any, url: str, wanted: Callable[[dict[str, Any]], bool], wait_s: int = 0
) -> list[dict[str, Any]]:
    """Receive what the observer queue holds; return the events ``wanted`` accepts (others are dropped)."""
    found: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s).get(
            "Messages", []
        )
        if not messages:
            return found
        for message in messages:
            event = json.loads(message["Body"])
            if isinstance(event, dict) and wanted(event):
                found.append(event)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        wait_s = 0


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _summary(console: Console, result: DemoResult, workdir: Path) -> None:
    table = Table(show_header=False, title="convclass-local demo")
    table.add_row("status", result.status + (f" ({result.error})" if result.error else ""))
    table.add_row("outcome", str(result.outcome))
    table.add_row("test accuracy", _fmt(result.test_accuracy))
    table.add_row("champion accuracy", _fmt(result.champion_accuracy))
    table.add_row("endpoint", str(result.endpoint))
    table.add_row("classified", f"{result.classified} ({result.failed} failed)")
    table.add_row("report", str(result.report))
    table.add_row("working directory", f"{workdir} (delete it to start over)")
    table.add_row("seconds", f"{result.seconds:.1f}")
    table.add_row("customer console", f"convclass-local console --workdir {workdir}")
    console.print(table)
