"""The local stand-ins for SageMaker, Lambda and the inbound Pipe, against the embedded AWS: the /opt/ml
contract, the Lambda wire format, and the Pipe's record shape."""

from __future__ import annotations

import json
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from convclass.errors import InsufficientData
from convclass.training.champion import CHAMPION_CHANNEL, champion_archive
from convclass_local.embedded import EmbeddedAws
from convclass_local.lambdas import invoke_handler, routed_output
from convclass_local.pipes import InboundPipe
from convclass_local.training import LocalTrainingRunner, MetricDefinition

BUCKET = "convclass-test-data"
# Stands in for the training image's `train`: reads the SageMaker contract, logs metrics, writes a model.
FAKE_TRAIN = r"""
import json, sys, pathlib
root = pathlib.Path(sys.argv[sys.argv.index("--root") + 1])
hp = json.loads((root / "input/config/hyperparameters.json").read_text())
rows = (root / "input/data/train/train.parquet").read_text()
if hp.get("fail") == "yes":
    (root / "output/failure").write_text("InvalidInput: the hyperparameters ask for failure")
    sys.exit(3)
for epoch in (1, 2):
    print(f"convclass-epoch epoch={epoch} loss=0.5 val_accuracy=0.{epoch}5 of=2", flush=True)
print("convclass-test accuracy=0.875 macro_f1=0.8", flush=True)
(root / "model/metrics.json").write_text(json.dumps({"rows": rows, "epochs": hp["epochs"]}))
"""


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    with EmbeddedAws() as embedded:
        embedded.client("s3").create_bucket(Bucket=BUCKET)
        embedded.client("s3").put_object(Bucket=BUCKET, Key="datasets/run-1/train.parquet", Body=b"rows")
        yield embedded


def _request(name: str, **hyperparameters: str) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "HyperParameters": {"epochs": "2", **hyperparameters},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/datasets/run-1/"}
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models/run-1"},
    }


def _runner(tmp_path: Path, lines: list[str]) -> LocalTrainingRunner:
    return LocalTrainingRunner(
        workdir=tmp_path,
        metric_definitions=[
            MetricDefinition("validation:accuracy", r"convclass-epoch .*\bval_accuracy=([0-9.]+)"),
            MetricDefinition("test:accuracy", r"convclass-test .*\baccuracy=([0-9.]+)"),
        ],
        listener=lambda _job, line: lines.append(line),
        command=(sys.executable, "-c", FAKE_TRAIN),
    )


def test_training_job_runs_over_an_opt_ml_directory_and_uploads_its_model(
    aws: EmbeddedAws, tmp_path: Path
) -> None:
    lines: list[str] = []
    outcome = _runner(tmp_path, lines).run(_request("job-ok"))
    assert outcome.status == "Completed", outcome.failure_reason
    assert outcome.model_artifacts == f"s3://{BUCKET}/models/run-1/job-ok/output/model.tar.gz"
    assert outcome.final_metrics == {"validation:accuracy": 0.25, "test:accuracy": 0.875}
    assert [line for line in lines if line.startswith("convclass-epoch")][-1].endswith("of=2")
    body = (
        aws.client("s3")
        .get_object(Bucket=BUCKET, Key="models/run-1/job-ok/output/model.tar.gz")["Body"]
        .read()
    )
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(body)
    with tarfile.open(archive) as tar:
        metrics = json.loads(tar.extractfile("metrics.json").read())  # type: ignore[union-attr]
    assert metrics == {"rows": "rows", "epochs": "2"}
    events = aws.client("logs").filter_log_events(logGroupName="/aws/sagemaker/TrainingJobs")["events"]
    assert any("convclass-test accuracy=0.875" in event["message"] for event in events)


def test_failed_training_job_reports_the_failure_file(aws: EmbeddedAws, tmp_path: Path) -> None:
    outcome = _runner(tmp_path, []).run(_request("job-fail", fail="yes"))
    assert outcome.status == "Failed"
    assert outcome.failure_reason == "InvalidInput: the hyperparameters ask for failure"
    assert outcome.model_artifacts == ""


def test_missing_channel_fails_the_job_before_training(aws: EmbeddedAws, tmp_path: Path) -> None:
    request = _request("job-nodata")
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = f"s3://{BUCKET}/datasets/none/"
    outcome = _runner(tmp_path, []).run(request)
    assert outcome.status == "Failed"
    assert "cannot stage input data" in outcome.failure_reason


def _handler_ok(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import os

    print(f"handling {event['n']} in {context.function_name}")
    return {
        "n": event["n"] + 1,
        "bucket": os.environ["CONVCLASS_DATA_BUCKET"],
        "left_ms": context.get_remaining_time_in_millis() > 0,
    }


def _handler_fails(event: dict[str, Any], context: Any) -> None:
    raise InsufficientData("2 labels left after filtering")


def test_lambda_handlers_run_in_process_with_their_environment_and_lambda_error_documents(
    aws: EmbeddedAws,
) -> None:
    common = {
        "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:f",
        "memory_mb": 128,
        "timeout_s": 3,
    }
    with routed_output():
        payload, errored = invoke_handler(
            f"{__name__}._handler_ok",
            {"n": 1},
            function_name="convclass-test-ok",
            environment={"CONVCLASS_DATA_BUCKET": "b-1"},
            **common,  # type: ignore[arg-type]
        )
    assert not errored
    assert json.loads(payload) == {"n": 2, "bucket": "b-1", "left_ms": True}
    logs = aws.client("logs").filter_log_events(logGroupName="/aws/lambda/convclass-test-ok")["events"]
    assert [event["message"] for event in logs] == ["handling 1 in convclass-test-ok"]

    payload, errored = invoke_handler(
        f"{__name__}._handler_fails",
        {},
        function_name="convclass-test-fail",
        environment={},
        **common,  # type: ignore[arg-type]
    )
    assert errored
    document = json.loads(payload)
    assert document["errorType"] == "InsufficientData"
    assert document["errorMessage"] == "2 labels left after filtering"

    payload, errored = invoke_handler(
        "functions.nothing_here.handler.handler",
        {},
        function_name="x",
        environment={},
        **common,  # type: ignore[arg-type]
    )
    assert errored
    assert json.loads(payload)["errorType"] == "HandlerNotFound"


def test_inbound_pipe_hands_sqs_records_to_the_workflow_and_deletes_them_only_on_success(
    aws: EmbeddedAws,
) -> None:
    sqs, sfn = aws.client("sqs"), aws.client("stepfunctions")
    url = sqs.create_queue(QueueName="convclass-test-inbound")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # The workflow echoes its input, or fails when told to: enough to observe what the Pipe sends.
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Check",
                    "States": {
                        "Check": {
                            "Type": "Choice",
                            "Choices": [{"Variable": "$.body", "StringEquals": "fail", "Next": "Fail"}],
                            "Default": "Echo",
                        },
                        "Echo": {"Type": "Pass", "End": True},
                        "Fail": {"Type": "Fail", "Error": "BatchFailed"},
                    },
                },
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name="convclass-test-inference",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/r",
        type="EXPRESS",
    )["stateMachineArn"]
    pipe = InboundPipe(
        sqs=sqs, sfn=sfn, queue_url=url, queue_arn=arn, region=aws.region, state_machine_arn=machine
    )
    sqs.send_message(
        QueueUrl=url,
        MessageBody="ok",
        MessageAttributes={"tenant": {"DataType": "String", "StringValue": "acme"}},
    )
    messages = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], AttributeNames=["All"])[
        "Messages"
    ]
    outcome = pipe.run_batch(messages)
    assert outcome.execution["status"] == "SUCCEEDED"
    assert outcome.deleted == (messages[0]["MessageId"],)
    record = json.loads(outcome.execution["output"])[0]
    assert record["body"] == "ok"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == arn
    assert record["messageAttributes"]["tenant"]["stringValue"] == "acme"
    assert "Messages" not in sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)

    sqs.send_message(QueueUrl=url, MessageBody="fail")
    failing = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
    outcome = pipe.run_batch(failing)
    assert outcome.execution["status"] == "FAILED"
    assert outcome.returned == (failing[0]["MessageId"],)
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "fail"


def _partial_batch_workflow(sfn: Any) -> str:
    """Reports every message whose body is "retry" (or "stranger", under an id not in the batch) as failed."""
    failure = {"Type": "Pass", "Parameters": {"failure": {"itemIdentifier.$": "$.messageId"}}, "End": True}
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Check",
                    "States": {
                        "Check": {
                            "Type": "Choice",
                            "Choices": [
                                {"Variable": "$.body", "StringEquals": "retry", "Next": "Failed"},
                                {"Variable": "$.body", "StringEquals": "stranger", "Next": "Stranger"},
                            ],
                            "Default": "Done",
                        },
                        "Done": {"Type": "Pass", "Parameters": {}, "End": True},
                        "Failed": failure,
                        "Stranger": {
                            "Type": "Pass",
                            "Parameters": {"failure": {"itemIdentifier": "not-in-this-batch"}},
                            "End": True,
                        },
                    },
                },
                "ResultSelector": {"batchItemFailures.$": "$[*].failure"},
                "End": True,
            }
        },
    }
    return str(
        sfn.create_state_machine(
            name="convclass-test-partial",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/r",
            type="EXPRESS",
        )["stateMachineArn"]
    )


def test_inbound_pipe_deletes_all_but_the_messages_reported_as_batch_item_failures(aws: EmbeddedAws) -> None:
    sqs, sfn = aws.client("sqs"), aws.client("stepfunctions")
    url = sqs.create_queue(QueueName="convclass-test-partial")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pipe = InboundPipe(
        sqs=sqs,
        sfn=sfn,
        queue_url=url,
        queue_arn=arn,
        region=aws.region,
        state_machine_arn=_partial_batch_workflow(sfn),
    )

    def batch(*bodies: str) -> list[dict[str, Any]]:
        for body in bodies:
            sqs.send_message(QueueUrl=url, MessageBody=body)
        # Visible again at once when not deleted, so the test sees what stays on the queue.
        received: list[dict[str, Any]] = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0
        )["Messages"]
        assert len(received) == len(bodies)
        return received

    def left_on_queue(*, delete: bool = False) -> list[str]:
        found = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        for message in found.get("Messages", []) if delete else []:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return sorted(m["Body"] for m in found.get("Messages", []))

    messages = batch("ok-1", "retry", "ok-2")
    outcome = pipe.run_batch(messages)
    by_body = {m["MessageId"]: m["Body"] for m in messages}
    assert sorted(by_body[i] for i in outcome.deleted) == ["ok-1", "ok-2"]
    assert [by_body[i] for i in outcome.returned] == ["retry"]
    assert left_on_queue(delete=True) == ["retry"]

    # A response naming a message that is not in the batch is malformed: the whole batch stays.
    outcome = pipe.run_batch(batch("ok-3", "stranger"))
    assert outcome.deleted == ()
    assert left_on_queue(delete=True) == ["ok-3", "stranger"]

    # A batch over the Step Functions input limit cannot start: nothing is deleted.
    outcome = pipe.run_batch(batch('"' * 200_000))
    assert outcome.execution["status"] == "NOT_STARTED"
    assert outcome.deleted == ()
    assert len(left_on_queue()) == 1


def test_champion_channel_holds_the_champions_archive_as_sagemaker_stages_it(
    aws: EmbeddedAws, tmp_path: Path
) -> None:
    """An S3Prefix channel naming one object (the champion's model.tar.gz) stages that file by its name."""
    key = "models/run-0/job-0/output/model.tar.gz"
    aws.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"champion archive")
    request = _request("job-champion")
    request["InputDataConfig"].append(
        {
            "ChannelName": CHAMPION_CHANNEL,
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{key}"}},
        }
    )
    outcome = _runner(tmp_path, []).run(request)
    assert outcome.status == "Completed", outcome.failure_reason
    input_data = tmp_path / "training" / "job-champion" / "input" / "data"
    staged = champion_archive(input_data)
    assert staged == input_data / CHAMPION_CHANNEL / "model.tar.gz"
    assert staged.read_bytes() == b"champion archive"
    assert champion_archive(tmp_path / "training" / "job-ok" / "input" / "data") is None
