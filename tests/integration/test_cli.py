"""Every ``convclass`` command against the embedded AWS (moto in server mode), through boto3 as on AWS."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from convclass.cli import app
from convclass.stack import StackOutputs
from convclass_local.embedded import EmbeddedAws

BUS = "convclass-test"
BUCKET = "convclass-test-data"
# A training pipeline reduced to its approval gate: the CLI only sees executions, history and task tokens,
# which is what this exercises (the full pipeline runs in tests/e2e).
GATED = {
    "StartAt": "ExportApproval",
    "States": {
        "ExportApproval": {
            "Type": "Task",
            "Resource": "arn:aws:states:::events:putEvents.waitForTaskToken",
            "Parameters": {
                "Entries": [
                    {
                        "EventBusName": BUS,
                        "Source": "convclass",
                        "DetailType": "Approval requested",
                        "Detail": {"gate": "export", "task_token.$": "$$.Task.Token", "tenant.$": "$.tenant"},
                    }
                ]
            },
            "TimeoutSeconds": 300,
            "HeartbeatSeconds": 240,
            "Next": "Done",
        },
        "Done": {
            "Type": "Pass",
            "Result": {"outcome": "deployed", "challenger": {"accuracy": 0.91}},
            "End": True,
        },
    },
}


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    with EmbeddedAws() as embedded:
        yield embedded


@pytest.fixture(scope="module")
def outputs_file(aws: EmbeddedAws, tmp_path_factory: pytest.TempPathFactory) -> Path:
    aws.client("events").create_event_bus(Name=BUS)
    arn = aws.client("stepfunctions").create_state_machine(
        name="convclass-test-training",
        definition=json.dumps(GATED),
        roleArn="arn:aws:iam::123456789012:role/convclass-test-states",
    )["stateMachineArn"]
    path = tmp_path_factory.mktemp("stack") / "outputs.json"
    aws.client("s3").create_bucket(Bucket=BUCKET)
    StackOutputs(
        region=aws.region, training_state_machine_arn=arn, event_bus_name=BUS, data_bucket=BUCKET
    ).save(path)
    return path


def cli(*args: str, outputs: Path | None = None) -> Any:
    argv = list(args) + (["--outputs", str(outputs)] if outputs is not None else [])
    return CliRunner().invoke(app, argv, env={"COLUMNS": "200"})


def wait_status(aws: EmbeddedAws, arn: str, want: str, timeout: float = 10) -> dict[str, Any]:
    sfn = aws.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if described["status"] == want or time.monotonic() > deadline:
            return described
        time.sleep(0.05)


def wait_pending(aws: EmbeddedAws, outputs: Path, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        result = cli("describe", name, outputs=outputs)
        assert result.exit_code == 0, result.output
        detail: dict[str, Any] = json.loads(result.output)
        if detail["pending_token"] or time.monotonic() > deadline:
            return detail
        time.sleep(0.05)


def test_train_is_idempotent_and_approve_by_execution_finishes_the_run(
    aws: EmbeddedAws, outputs_file: Path
) -> None:
    train = (
        "train",
        "acme",
        "--business-key",
        "2026-11-29",
        "--source",
        "files",
        "--source-uri",
        "s3://b/x.parquet",
    )
    first = cli(*train, outputs=outputs_file)
    again = cli(*train, outputs=outputs_file)
    assert first.exit_code == 0, first.output
    assert again.exit_code == 0, again.output
    assert "acme--default--2026-11-29" in first.output
    runs = cli("runs", "acme", outputs=outputs_file)
    assert runs.output.count("acme--default--2026-11-29") == 1

    detail = wait_pending(aws, outputs_file, "acme--default--2026-11-29")
    assert detail["current_state"] == "ExportApproval"
    assert detail["status"] == "RUNNING"

    approved = cli(
        "approve", "--execution", "acme--default--2026-11-29", "--reason", "looks good", outputs=outputs_file
    )
    assert approved.exit_code == 0, approved.output
    assert "export gate approved (the run records the tenant's consent)" in approved.output

    final = wait_status(aws, detail["arn"], "SUCCEEDED")
    assert final["status"] == "SUCCEEDED"

    status = cli("status", "acme", outputs=outputs_file)
    assert status.exit_code == 0, status.output
    assert "SUCCEEDED" in status.output
    assert "0.910" in status.output
    assert "endpoint: none deployed" in status.output


def test_reject_by_token_fails_the_run_as_approval_rejected(aws: EmbeddedAws, outputs_file: Path) -> None:
    started = cli(
        "train",
        "globex",
        "-c",
        "urgency",
        "--business-key",
        "run-1",
        "--label-field",
        "urgency",
        outputs=outputs_file,
    )
    assert started.exit_code == 0, started.output
    detail = wait_pending(aws, outputs_file, "globex--urgency--run-1")
    assert detail["pending_token"]

    rejected = cli(
        "reject", "--token", detail["pending_token"], "--reason", "no consent", outputs=outputs_file
    )
    assert rejected.exit_code == 0, rejected.output
    final = wait_status(aws, detail["arn"], "FAILED")
    assert final["status"] == "FAILED"
    assert final["error"] == "ApprovalRejected"

    again = cli("approve", "--execution", "globex--urgency--run-1", outputs=outputs_file)
    assert again.exit_code == 2
    assert "not waiting for an approval" in again.output


def test_unknown_tenant_missing_execution_and_bad_token_are_named(outputs_file: Path) -> None:
    status = cli("status", "nobody", outputs=outputs_file)
    assert status.exit_code == 2
    assert "unknown tenant/classifier nobody/default" in status.output

    missing = cli("describe", "acme--default--never", outputs=outputs_file)
    assert missing.exit_code == 2
    assert "no training run 'acme--default--never'" in missing.output

    token = cli("approve", "--token", "not-a-token", outputs=outputs_file)
    assert token.exit_code == 2
    assert "not (or no longer) valid" in token.output

    classify = cli("classify", "nobody", "--body", "hello", outputs=outputs_file)
    assert classify.exit_code == 2
    assert "no endpoint for tenant 'nobody'" in classify.output

    bad_id = cli("status", "Not_A_Tenant", outputs=outputs_file)
    assert bad_id.exit_code == 2
    assert "tenant id must be 1-24 lowercase letters" in bad_id.output


def test_missing_stack_output_and_missing_credentials_are_explained(
    aws: EmbeddedAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "outputs.json"
    empty.write_text("{}")
    result = cli("runs", outputs=empty)
    assert result.exit_code == 2
    assert "stack output 'training_state_machine_arn' is missing" in result.output

    absent = cli("runs", outputs=tmp_path / "nope.json")
    assert absent.exit_code == 2
    assert "does not exist" in absent.output

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv(
        "CONVCLASS_TRAINING_STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:x"
    )
    no_credentials = cli("runs", "--region", "us-east-1")
    assert no_credentials.exit_code == 2
    assert "no AWS credentials found" in no_credentials.output


def test_logs_prints_the_training_job_log(aws: EmbeddedAws, outputs_file: Path) -> None:
    logs = aws.client("logs")
    group = "/aws/sagemaker/TrainingJobs"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="acme-default-job-0/algo-1-1")
    logs.put_log_events(
        logGroupName=group,
        logStreamName="acme-default-job-0/algo-1-1",
        logEvents=[
            {"timestamp": int(time.time() * 1000), "message": f"convclass-epoch epoch={i} of=3"}
            for i in (1, 2, 3)
        ],
    )
    result = cli("logs", "acme-default-job-0", "--tail", "2", outputs=outputs_file)
    assert result.exit_code == 0, result.output
    assert "epoch=2" in result.output
    assert "epoch=3" in result.output
    assert "epoch=1" not in result.output

    missing = cli("logs", "no-such-job", outputs=outputs_file)
    assert missing.exit_code == 2
    assert "no logs for training job 'no-such-job'" in missing.output


def test_invalid_training_request_is_named_before_anything_starts(outputs_file: Path, tmp_path: Path) -> None:
    result = cli("train", "acme", "--source", "files", outputs=outputs_file)
    assert result.exit_code == 2
    assert "data_source: Value error, data_source.uri is required for kind 'files'" in result.output

    request = tmp_path / "request.json"
    request.write_text(json.dumps({"tenant": "acme", "classifier": "default", "label_field": "bad field!"}))
    result = cli("train", "acme", "--request", str(request), outputs=outputs_file)
    assert result.exit_code == 2
    assert "label_field" in result.output
    assert "data_source: Field required" in result.output


def test_consent_is_recorded_and_revoked(aws: EmbeddedAws, outputs_file: Path) -> None:
    granted = cli("consent", "initech", "-c", "topic", "--label-field", "topic", outputs=outputs_file)
    assert granted.exit_code == 0, granted.output
    key = "tenants/initech/classifiers/topic/consent.json"
    body = json.loads(aws.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert body["approved"] is True
    assert body["revoked_at"] is None

    revoked = cli("consent", "initech", "-c", "topic", "--revoke", outputs=outputs_file)
    assert revoked.exit_code == 0, revoked.output
    body = json.loads(aws.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert body["approved"] is False
    assert body["revoked_at"] is not None


def test_train_wait_follows_the_run_to_its_end(aws: EmbeddedAws, tmp_path: Path) -> None:
    definition = {
        "StartAt": "Train",
        "States": {"Train": {"Type": "Wait", "Seconds": 1, "Next": "Done"}, "Done": {"Type": "Succeed"}},
    }
    arn = aws.client("stepfunctions").create_state_machine(
        name="convclass-test-quick",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/convclass-test-states",
    )["stateMachineArn"]
    outputs = tmp_path / "outputs.json"
    StackOutputs(region=aws.region, training_state_machine_arn=arn).save(outputs)
    result = cli("train", "acme", "--source", "mongodb", "--business-key", "w-1", "--wait", outputs=outputs)
    assert result.exit_code == 0, result.output
    assert "→ Train" in result.output
    assert "SUCCEEDED" in result.output


def test_runs_filter_by_exact_tenant_never_mixes_tenants_whose_ids_share_a_prefix(
    aws: EmbeddedAws, outputs_file: Path
) -> None:
    for tenant, classifier in (("acme", "shop-intent"), ("acme-shop", "intent")):
        started = cli(
            "train",
            tenant,
            "--classifier",
            classifier,
            "--business-key",
            "prefix-check",
            "--source",
            "files",
            "--source-uri",
            "s3://b/x.parquet",
            outputs=outputs_file,
        )
        assert started.exit_code == 0, started.output
    mine = cli("runs", "acme", "--classifier", "shop-intent", outputs=outputs_file)
    theirs = cli("runs", "acme-shop", outputs=outputs_file)
    assert "acme--shop-intent--prefix-check" in mine.output
    assert "acme-shop--intent--prefix-check" not in mine.output
    assert "acme-shop--intent--prefix-check" in theirs.output
    assert "acme--shop-intent--prefix-check" not in theirs.output


def test_redrive_resumes_a_failed_run_at_the_step_that_failed(aws: EmbeddedAws, tmp_path: Path) -> None:
    bucket = "convclass-test-redrive"
    aws.client("s3").create_bucket(Bucket=bucket)
    definition = {
        "StartAt": "Prepared",
        "States": {
            "Prepared": {
                "Type": "Pass",
                "Result": {"ready": True},
                "ResultPath": "$.prepared",
                "Next": "Read",
            },
            "Read": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
                "Parameters": {"Bucket": bucket, "Key": "input.json"},
                "ResultSelector": {"size.$": "$.ContentLength"},
                "ResultPath": "$.read",
                "End": True,
            },
        },
    }
    sfn = aws.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="convclass-test-redrivable",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/convclass-test-states",
    )["stateMachineArn"]
    outputs = tmp_path / "outputs.json"
    StackOutputs(region=aws.region, training_state_machine_arn=arn, data_bucket=bucket).save(outputs)
    execution = sfn.start_execution(stateMachineArn=arn, name="acme--support--redrive", input="{}")[
        "executionArn"
    ]
    assert wait_status(aws, execution, "FAILED")["status"] == "FAILED"

    not_yet = cli("redrive", "acme--support--never", outputs=outputs)
    assert not_yet.exit_code == 2
    aws.client("s3").put_object(Bucket=bucket, Key="input.json", Body=b"{}")
    redriven = cli("redrive", "acme--support--redrive", outputs=outputs)
    assert redriven.exit_code == 0, redriven.output
    described = wait_status(aws, execution, "SUCCEEDED")
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["read"] == {"size": 2}
    events = sfn.get_execution_history(executionArn=execution)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    assert entered == ["Prepared", "Read", "Read"]  # the completed step is not run again
    again = cli("redrive", "acme--support--redrive", outputs=outputs)
    assert again.exit_code == 2
    assert "cannot be redriven" in again.output
