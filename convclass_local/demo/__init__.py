"""``convclass-local demo``: one tenant's whole life on an embedded AWS, narrated, in four acts.

1. :mod:`~convclass_local.demo.training`: a sample online shop drops a snapshot of its labelled support
   emails (seeded, realistic HTML); a training request goes onto the training queue, the starter starts the
   real training pipeline, the approval gates are answered, the real training entrypoint trains a model and
   the pipeline deploys it to the tenant's endpoint (the real serving app). A second demo on the same
   working directory retrains: its challenger meets the first run's champion.
2. :mod:`~convclass_local.demo.inbound`: new inbound emails go through the inbound queue, the Pipe and the
   inference workflow; their events are read from the bus the way a tenant's integration would.
3. :mod:`~convclass_local.demo.feedback`: the stream shifts (a rare label gets common, a new one appears);
   simulated agents confirm labels through the bus and the real feedback function, drift is measured, and
   the retraining policy starts a run by itself that learns the new label.
4. :mod:`~convclass_local.demo.shared`: two more small tenants train with hosting ``shared``; both models
   are served by the one shared multi-model endpoint, and new emails of each tenant are answered by its own
   model (the route's ``TargetModel``).

:mod:`~convclass_local.demo.options` holds the options, the figures and the summary;
:mod:`~convclass_local.demo.session` what the acts share. The last line printed is one JSON object
(status, execution_arn, test_accuracy, endpoint, classified, feedback, shared, seconds ...).
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from convclass import layout
from convclass.feedback.loop import policy_key
from convclass_local.demo import feedback, inbound, shared, training
from convclass_local.demo.options import (
    DEMO_CLASSIFIER,
    DEMO_FEEDBACK_POLICY,
    DEMO_HYPERPARAMETERS,
    DEMO_LABEL_FIELD,
    DEMO_TENANT,
    DemoOptions,
    DemoResult,
    print_summary,
)
from convclass_local.demo.session import DemoSession
from convclass_local.runtime import LocalRuntime

__all__ = [
    "DEMO_CLASSIFIER",
    "DEMO_HYPERPARAMETERS",
    "DEMO_LABEL_FIELD",
    "DEMO_TENANT",
    "EPOCH_LINE",
    "DemoOptions",
    "run_demo",
]

EPOCH_LINE = re.compile(r"convclass-epoch .*\bepoch=(\d+)\b.*\bof=(\d+)")
_VAL_ACCURACY = re.compile(r"\bval_accuracy=([0-9.eE+-]+)")


class _TrainingProgress:
    """Turns the training job's metric log lines into a progress bar (called on the job's thread)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None
        self._lock = threading.Lock()

    def __call__(self, _job: str, line: str) -> None:
        match = EPOCH_LINE.search(line)
        if not match:
            return
        epoch, total = int(match.group(1)), int(match.group(2))
        accuracy = _VAL_ACCURACY.search(line)
        label = "training" + (f" (val acc {float(accuracy.group(1)):.3f})" if accuracy else "")
        with self._lock:
            if self._task is None or epoch < (self._progress.tasks[self._task].completed or 0):
                # A new training job (the automatic run of act three) gets a bar of its own.
                self._task = self._progress.add_task(label, total=total)
            self._progress.update(self._task, completed=epoch, total=total, description=label)


def run_demo(options: DemoOptions) -> int:
    """Run the demo; returns the process exit status (0 when the run succeeded and emails were classified,
    with a third act its automatic run succeeded, and with a fourth both tenants were answered on the
    shared endpoint by their own models)."""
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
    runtime = LocalRuntime(
        workdir=options.workdir,
        training_listener=_TrainingProgress(progress),
        feedback_policies={policy_key(DEMO_TENANT, DEMO_CLASSIFIER): DEMO_FEEDBACK_POLICY},
    )
    try:
        with _interrupt_on_terminate(), runtime:
            _acts(DemoSession(runtime, options, console, progress, result))
    except KeyboardInterrupt:
        progress.stop()
        console.print("[yellow]interrupted: stopped every execution, process and server this run started[/]")
        result.status = "INTERRUPTED"
        result.seconds = time.monotonic() - started
        print(json.dumps(result.as_json()), flush=True)
        return 130
    result.seconds = time.monotonic() - started
    print_summary(console, result, runtime.workdir)
    print(json.dumps(result.as_json()), flush=True)
    # A challenger rejected by the comparison ends SUCCEEDED (outcome "rejected"): the champion keeps serving.
    ok = result.status == "SUCCEEDED" and result.failed == 0 and result.endpoint is not None
    third = result.feedback
    if third is not None and third.automatic_run is not None:
        ok = ok and third.automatic_run_status == "SUCCEEDED"
    if result.shared is not None:
        ok = ok and result.shared.ok
    return 0 if ok else 1


def _acts(session: DemoSession) -> None:
    runtime, result = session.runtime, session.result
    session.say(
        f"embedded AWS on [bold]{runtime.aws.endpoint_url}[/]: bucket, KMS key, queues + DLQs, bus, "
        f"6 functions and 2 state machines created; stack outputs in {runtime.outputs_path}"
    )
    champion = training.champion(session)
    reports = runtime.workdir / "reports"
    result.run = 1 + (sum(1 for p in reports.iterdir() if p.is_dir()) if reports.is_dir() else 0)
    if champion is not None:
        session.say(
            f"restored the previous run's data ({runtime.restored_objects} objects): endpoint "
            f"[bold]{champion['endpoint']}[/] serves run "
            f"{champion['run_id']} (test accuracy {champion['accuracy']:.3f}) — this run retrains"
        )
    observer = session.observe_bus()
    training.train_and_deploy(session, observer)
    endpoint = layout.endpoint_name(DEMO_TENANT, DEMO_CLASSIFIER)
    if not training.endpoint_exists(session, endpoint):
        if result.outcome is not None:
            session.say("[red]no endpoint is deployed: nothing to classify[/]")
        return
    result.endpoint = endpoint
    inbound.classify_new_emails(session, endpoint, observer)
    if session.options.feedback > 0:
        feedback.agents_confirm(session, observer)
    if session.options.shared_emails > 0:
        shared.share_one_endpoint(session, observer)


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
