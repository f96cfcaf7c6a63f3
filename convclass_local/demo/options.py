"""What a demo run is asked to do, what it found, and the summary it prints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from convclass.feedback.policy import RetrainingPolicy
from convclass_local.generator import REALISTIC, Difficulty

DEMO_TENANT = "acme-shop"
DEMO_CLASSIFIER = "intent"
DEMO_LABEL_FIELD = "intent"
#: The small convolutional model trains in seconds on two cores; the pretrained MiniLM is the production
#: default.
DEMO_HYPERPARAMETERS: Mapping[str, str] = {"architecture": "cnn", "epochs": "6", "max_length": "64"}
#: The sample tenant's retraining policy (the stack config's ``feedback:`` section): a few dozen confirmations
#: are what the demo sends, so a new label counts from 12 conversations (the default is 60). Every other
#: threshold is the default.
DEMO_FEEDBACK_POLICY = RetrainingPolicy(min_unknown_label_conversations=12)
APPROVER = "convclass-local demo"


@dataclass(frozen=True)
class DemoOptions:
    workdir: Path
    emails: int = 3000
    inbound: int = 8
    #: Act three: emails classified and then confirmed by the simulated agents (0: no third act).
    feedback: int = 120
    #: Act four: labelled emails of each of the two small tenants that share one endpoint (0: no act four).
    shared_emails: int = 600
    interactive: bool = False
    hyperparameters: Mapping[str, str] = field(default_factory=lambda: dict(DEMO_HYPERPARAMETERS))
    #: How hard the sample tenant's labels are: as a real tenant's by default (overlapping topics, label
    #: noise), so the demo's figures and report look like one.
    difficulty: Difficulty = REALISTIC
    timeout_s: float = 900.0
    console: Console | None = None


@dataclass
class FeedbackResult:
    """Act three's figures: what the agents confirmed, what the feedback loop measured, the automatic run."""

    emails: int = 0
    confirmations: int = 0
    top1: float | None = None
    psi: float | None = None
    drift_band: str | None = None
    unknown_labels: dict[str, int] = field(default_factory=dict)
    new_label: str | None = None
    automatic_run: str | None = None
    automatic_run_reason: str | None = None
    automatic_run_status: str | None = None
    automatic_outcome: str | None = None
    automatic_test_accuracy: float | None = None
    #: The automatic run's training set has the new label (its dataset manifest lists it).
    new_label_known: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "emails": self.emails,
            "confirmations": self.confirmations,
            "top1": self.top1,
            "psi": self.psi,
            "drift_band": self.drift_band,
            "unknown_labels": self.unknown_labels,
            "new_label": self.new_label,
            "automatic_run": self.automatic_run,
            "automatic_run_reason": self.automatic_run_reason,
            "automatic_run_status": self.automatic_run_status,
            "automatic_outcome": self.automatic_outcome,
            "automatic_test_accuracy": self.automatic_test_accuracy,
            "new_label_known": self.new_label_known,
        }


@dataclass
class SharedTenantResult:
    """One tenant of act four: its run, its route on the shared endpoint and its classified emails."""

    classifier: str
    labels: list[str]
    status: str = "NOT_STARTED"
    test_accuracy: float | None = None
    target_model: str | None = None
    classified: int = 0
    failed: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "classifier": self.classifier,
            "labels": self.labels,
            "status": self.status,
            "test_accuracy": self.test_accuracy,
            "target_model": self.target_model,
            "classified": self.classified,
            "classification_failed": self.failed,
        }


@dataclass
class SharedResult:
    """Act four's figures: the shared endpoint, each tenant on it, and answers carrying another tenant's
    label (0 when isolation holds)."""

    endpoint: str
    tenants: dict[str, SharedTenantResult] = field(default_factory=dict)
    leaks: int = 0

    @property
    def ok(self) -> bool:
        return (
            bool(self.tenants)
            and self.leaks == 0
            and all(
                t.status == "SUCCEEDED" and t.target_model is not None and t.classified > 0 and t.failed == 0
                for t in self.tenants.values()
            )
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "tenants": {name: tenant.as_json() for name, tenant in self.tenants.items()},
            "cross_tenant_answers": self.leaks,
        }


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
    feedback: FeedbackResult | None = None
    shared: SharedResult | None = None

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
            "feedback": self.feedback.as_json() if self.feedback else None,
            "shared": self.shared.as_json() if self.shared else None,
            "seconds": round(self.seconds, 1),
        }


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def print_summary(console: Console, result: DemoResult, workdir: Path) -> None:
    table = Table(show_header=False, title="convclass-local demo")
    table.add_row("status", result.status + (f" ({result.error})" if result.error else ""))
    table.add_row("outcome", str(result.outcome))
    table.add_row("test accuracy", fmt(result.test_accuracy))
    table.add_row("champion accuracy", fmt(result.champion_accuracy))
    table.add_row("endpoint", str(result.endpoint))
    table.add_row("classified", f"{result.classified} ({result.failed} failed)")
    table.add_row("report", str(result.report))
    found = result.feedback
    if found is not None:
        table.add_row("confirmed by agents", f"{found.confirmations} (top-1 agreement {fmt(found.top1)})")
        table.add_row("drift", f"PSI {fmt(found.psi)} ({found.drift_band}); unknown {found.unknown_labels}")
        table.add_row(
            "automatic run",
            f"{found.automatic_run} {found.automatic_run_status} ({found.automatic_outcome}): "
            f"{found.automatic_run_reason}",
        )
        table.add_row("new label learnt", f"{found.new_label}: {'yes' if found.new_label_known else 'no'}")
    shared = result.shared
    if shared is not None:
        for name, tenant in shared.tenants.items():
            table.add_row(
                f"shared: {name}/{tenant.classifier}",
                f"{tenant.status}, test accuracy {fmt(tenant.test_accuracy)}, {tenant.classified} classified "
                f"({tenant.failed} failed) via {shared.endpoint} → {tenant.target_model}",
            )
        table.add_row("shared: cross-tenant answers", str(shared.leaks))
    table.add_row("working directory", f"{workdir} (delete it to start over)")
    table.add_row("seconds", f"{result.seconds:.1f}")
    table.add_row("customer console", f"convclass-local console --workdir {workdir}")
    console.print(table)
