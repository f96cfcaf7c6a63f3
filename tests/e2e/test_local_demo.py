"""The demo's code path end to end, smaller: real pipeline, real handlers, real training, real serving app.

Two runs on one working directory: the first trains and deploys, classifies, and plays the third act (agents
confirm a shifted stream with a new label through the bus and the feedback function; the policy starts a
run by itself that learns the label) and the fourth (two small tenants deployed to the one shared endpoint,
each answered by its own model); the second retrains against the champion left behind (restored from the
working directory). Then the CLI classifies through the tenant's endpoint and through a shared tenant's
route.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from convclass.cli import app
from convclass_local.demo import DEMO_CLASSIFIER, DEMO_TENANT, DemoOptions, run_demo
from convclass_local.demo.shared import SHARED_TENANTS
from convclass_local.generator import EMERGING_LABEL, Difficulty, template_labels
from convclass_local.runtime import LocalRuntime

pytestmark = pytest.mark.slow

# Same code path as `make demo`, sized for CI: fewer emails and epochs.
HYPERPARAMETERS = {"architecture": "cnn", "epochs": "4", "max_length": "48"}


def _demo(
    workdir: Path, capsys: pytest.CaptureFixture[str], feedback: int = 0, shared_emails: int = 0
) -> tuple[int, dict[str, Any], str]:
    screen = io.StringIO()
    options = DemoOptions(
        workdir=workdir,
        emails=400,
        inbound=3,
        feedback=feedback,
        shared_emails=shared_emails,
        hyperparameters=HYPERPARAMETERS,
        # Clean labels: the second run must deploy (the path under test), which a noisy 400-email tenant
        # leaves to chance.
        difficulty=Difficulty(),
        timeout_s=300,
        console=Console(file=screen, width=160),
    )
    code = run_demo(options)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    return code, json.loads(last), screen.getvalue()


def test_demo_trains_deploys_classifies_then_retrains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workdir = tmp_path / "convclass"
    code, first, screen = _demo(workdir, capsys, feedback=40, shared_emails=300)
    assert code == 0, screen
    assert first["status"] == "SUCCEEDED"
    assert first["outcome"] == "deployed"
    assert first["endpoint"] == "cc-acme-shop--intent"
    assert first["classified"] == 3
    assert first["classification_failed"] == 0
    assert first["test_accuracy"] >= 0.7
    assert first["champion_accuracy"] is None
    assert first["execution_arn"].endswith(
        ":execution:convclass-local-training:" + first["execution_arn"].split(":")[-1]
    )
    for state in (
        "RequestExportApproval",
        "Export",
        "Preprocess",
        "Train",
        "RequestDeployApproval",
        "CreateEndpoint",
    ):
        assert f"→ {state}\n" in screen
    assert "export approval requested → approved" in screen
    assert (Path(first["report"]) / "confusion_matrix.png").is_file()

    # Act three: every classified email of the shifted stream was confirmed through the real capture path,
    # the new label was seen, and the policy's run (the same idempotent request, keyed to the day) learnt it.
    third = first["feedback"]
    assert third["emails"] == 40
    assert third["confirmations"] == 40
    assert third["psi"] > 0
    assert third["drift_band"] in ("none", "moderate", "major")
    assert third["unknown_labels"][EMERGING_LABEL] >= 12
    assert "--feedback-" in third["automatic_run"]
    assert third["automatic_run_reason"].startswith(f"unknown-labels: {EMERGING_LABEL} (")
    assert third["automatic_run_status"] == "SUCCEEDED"
    assert third["new_label_known"] is True
    assert f"started {third['automatic_run']} by itself" in screen

    # Act four: two small tenants with disjoint label sets, both deployed to the one shared endpoint (no
    # endpoint of their own), each answered by its own model through its route's TargetModel.
    shared = first["shared"]
    assert shared["endpoint"] == "convclass-local-shared"
    assert shared["cross_tenant_answers"] == 0
    assert set(shared["tenants"]) == {tenant.tenant for tenant in SHARED_TENANTS}
    for name, tenant in shared["tenants"].items():
        assert tenant["status"] == "SUCCEEDED"
        assert tenant["target_model"].startswith(f"{name}/{tenant['classifier']}/")
        assert (tenant["classified"], tenant["classification_failed"]) == (3, 0)
    assert set(shared["tenants"]["initech"]["labels"]) == {"urgent", "routine"}
    assert "→ PublishSharedModel\n" in screen
    assert "→ WarmSharedModel\n" in screen
    assert "answers with another tenant's label: 0" in screen

    code, second, screen = _demo(workdir, capsys)
    assert code == 0, screen
    assert second["run"] == 2
    # The champion is scored on the second run's test split (not its own): a figure of its own, in [0, 1].
    assert second["champion_accuracy"] is not None
    assert 0.0 <= second["champion_accuracy"] <= 1.0
    assert "→ UpdateEndpoint\n" in screen
    assert "vs champion" in screen
    assert second["classified"] == 3
    assert second["feedback"] is None
    assert second["shared"] is None

    # The deployment outlives the process: a new runtime on the same directory serves the champion to the CLI.
    with LocalRuntime(workdir=workdir) as runtime:
        outputs = str(runtime.outputs_path)
        classify = CliRunner().invoke(
            app,
            [
                "classify",
                DEMO_TENANT,
                "-c",
                DEMO_CLASSIFIER,
                "--body",
                "I was charged twice for my order.",
                "--text",
                "--json",
                "--outputs",
                outputs,
            ],
        )
        assert classify.exit_code == 0, classify.output
        predictions = json.loads(classify.output)
        assert len(predictions) == 1
        assert predictions[0]["labels"][0]["label"] in (*template_labels(), EMERGING_LABEL)
        status = CliRunner().invoke(
            app, ["status", DEMO_TENANT, "-c", DEMO_CLASSIFIER, "--outputs", outputs], env={"COLUMNS": "200"}
        )
        assert status.exit_code == 0, status.output
        assert "endpoint: cc-acme-shop--intent InService" in status.output
        # The shared endpoint is restored too: the CLI follows globex's route to its model.
        classify = CliRunner().invoke(
            app,
            [
                *("classify", "globex", "-c", "intent", "--body", "Where is my parcel?"),
                *("--text", "--json", "--outputs", outputs),
            ],
        )
        assert classify.exit_code == 0, classify.output
        (prediction,) = json.loads(classify.output)
        assert prediction["labels"][0]["label"] in template_labels()
