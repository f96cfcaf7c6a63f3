"""The feedback component under Pulumi mocks: bus rules → queue + DLQ → Lambda, lifecycle, least privilege."""

from __future__ import annotations

import json
from typing import Any

from convclass.deployment import FEEDBACK_POLICIES_ENV
from convclass.events import EMAIL_CLASSIFIED, INFERENCE_SOURCE
from convclass.feedback.events import HOST_SOURCE, LABEL_CONFIRMED
from convclass.feedback.loop import policies_from_json
from convclass.feedback.policy import RetrainingPolicy
from infra.mocks import Recording
from tests.infra.conftest import only

RULE = "aws:cloudwatch/eventRule:EventRule"


def _statements(recording: Recording) -> dict[str, dict[str, Any]]:
    policy = only(recording, "aws:iam/rolePolicy:RolePolicy", "feedback-function-policy")
    return {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}


def test_both_inputs_reach_the_feedback_queue_and_only_their_rules_may_send(recording: Recording) -> None:
    confirmations = only(recording, RULE, "feedback-feedback-confirmations")
    predictions = only(recording, RULE, "feedback-feedback-predictions")
    assert json.loads(confirmations.inputs["eventPattern"]) == {
        "source": [HOST_SOURCE],
        "detail-type": [LABEL_CONFIRMED],
    }
    assert json.loads(predictions.inputs["eventPattern"]) == {
        "source": [INFERENCE_SOURCE],
        "detail-type": [EMAIL_CLASSIFIED],
    }
    queue = only(recording, "aws:sqs/queue:Queue", "feedback-events-queue")
    assert queue.inputs["name"] == "convclass-dev-feedback-events"
    assert json.loads(queue.inputs["redrivePolicy"])["deadLetterTargetArn"].endswith(
        "convclass-dev-feedback-events-dlq"
    )
    for rule in ("confirmations", "predictions"):
        target = only(recording, "aws:cloudwatch/eventTarget:EventTarget", f"feedback-feedback-{rule}-target")
        assert target.inputs["arn"] == queue.outputs["arn"]
        assert "deadLetterConfig" in target.inputs
    policy = json.loads(
        only(recording, "aws:sqs/queuePolicy:QueuePolicy", "feedback-queue-policy").inputs["policy"]
    )
    (allow,) = policy["Statement"]
    assert sorted(allow["Condition"]["ArnEquals"]["aws:SourceArn"]) == sorted(
        [confirmations.outputs["arn"], predictions.outputs["arn"]]
    )
    source = only(recording, "aws:lambda/eventSourceMapping:EventSourceMapping", "feedback-source")
    assert source.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source.inputs["eventSourceArn"] == queue.outputs["arn"]


def test_the_function_reaches_only_feedback_rows_and_what_the_policy_reads(recording: Recording) -> None:
    statements = _statements(recording)
    bucket = recording.stack_outputs["data_bucket"]

    def keys(sid: str) -> set[str]:
        return {r.removeprefix(f"arn:aws:s3:::{bucket}/") for r in statements[sid]["Resource"]}

    assert keys("DataWrite") == {"tenants/*/classifiers/*/feedback/*"}
    assert keys("TagRows") == {"tenants/*/classifiers/*/feedback/*"}
    assert keys("DataRead") == {
        "tenants/*/classifiers/*/feedback/*",
        "tenants/*/classifiers/*/champion.json",
        "tenants/*/classifiers/*/datasets/*/manifest.json",
    }
    # Key names only, bucket-wide: a classifier with no champion.json yet reads as 404, not 403.
    assert statements["DataList"]["Action"] == ["s3:ListBucket"]
    assert "Condition" not in statements["DataList"]
    training = recording.stack_outputs["training_state_machine_arn"]
    assert statements["ReadTrainingRuns"]["Action"] == ["states:DescribeExecution"]
    assert statements["ReadTrainingRuns"]["Resource"] == [
        training.replace(":stateMachine:", ":execution:") + ":*"
    ]
    assert statements["RequestTraining"]["Action"] == ["sqs:SendMessage"]
    assert statements["RequestTraining"]["Resource"][0].endswith(":convclass-dev-training-requests")
    assert statements["PublishReviews"]["Action"] == ["events:PutEvents"]
    assert "states:StartExecution" not in json.dumps(statements)


def test_configured_policies_reach_the_function(recording: Recording) -> None:
    function = only(recording, "aws:lambda/function:Function", "feedback-function-function")
    policies = policies_from_json(function.inputs["environment"]["variables"][FEEDBACK_POLICIES_ENV])
    assert policies == {"acme/intent": RetrainingPolicy(min_new_confirmations=500, review_threshold=0.6)}


def test_feedback_rows_expire_by_tag(recording: Recording) -> None:
    (lifecycle,) = recording.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    (rule,) = [r for r in lifecycle.inputs["rules"] if r["id"] == "feedback-expire"]
    assert rule["filter"] == {"tag": {"key": "convclass-area", "value": "feedback"}}
    assert rule["expiration"]["days"] == 400
