"""The starter Lambda against moto's Step Functions: one run per request, however often it arrives."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from moto import mock_aws

from convclass.deployment import TRAINING_STATE_MACHINE_ENV
from convclass.errors import InvalidInput
from convclass.events import TrainingRunRequest, execution_name
from convclass.layout import training_execution_name
from functions.starter import handler as starter

REGION = "eu-west-1"
REQUEST = {
    "tenant": "acme",
    "classifier": "intent",
    "label_field": "intent",
    "data_source": {"kind": "mongodb"},
}


@pytest.fixture
def state_machine(monkeypatch: pytest.MonkeyPatch, fake_aws_credentials: None) -> Iterator[str]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        iam = boto3.client("iam")
        role = iam.create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}
        arn = boto3.client("stepfunctions").create_state_machine(
            name="training", definition=json.dumps(definition), roleArn=role
        )["stateMachineArn"]
        monkeypatch.setenv(TRAINING_STATE_MACHINE_ENV, arn)
        starter._stepfunctions.cache_clear()
        yield arn
        starter._stepfunctions.cache_clear()


def _event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": body,
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:training-requests",
                "awsRegion": REGION,
            }
            for i, body in enumerate(bodies)
        ]
    }


def _executions(arn: str) -> list[dict[str, Any]]:
    return boto3.client("stepfunctions").list_executions(stateMachineArn=arn)["executions"]  # type: ignore[no-any-return]


def test_a_redelivered_request_starts_one_run(state_machine: str, lambda_context: LambdaContext) -> None:
    body = json.dumps(REQUEST)
    assert starter.handler(_event(body, body), lambda_context) == {"batchItemFailures": []}
    assert starter.handler(_event(body), lambda_context) == {"batchItemFailures": []}
    (execution,) = _executions(state_machine)
    request = TrainingRunRequest.model_validate(REQUEST)
    assert execution["name"] == execution_name(request)
    described = boto3.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    assert TrainingRunRequest.model_validate_json(described["input"]) == request


def test_the_same_business_key_with_other_options_is_a_duplicate_not_a_second_run(
    state_machine: str, lambda_context: LambdaContext
) -> None:
    first = {**REQUEST, "business_key": "scheduled-2026-11-30T03:00:00Z"}
    second = {**first, "options": {"managed_spot": False}}
    result = starter.handler(_event(json.dumps(first), json.dumps(second)), lambda_context)
    assert result == {"batchItemFailures": []}
    (execution,) = _executions(state_machine)
    assert execution["name"] == training_execution_name("acme", "intent", "scheduled-2026-11-30T03:00:00Z")


def test_invalid_requests_fail_alone_and_go_back_to_the_queue(
    state_machine: str, lambda_context: LambdaContext
) -> None:
    result = starter.handler(
        _event("not json", json.dumps({**REQUEST, "tenant": "Acme!"}), json.dumps(REQUEST)), lambda_context
    )
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}
    assert len(_executions(state_machine)) == 1


def test_invalid_input_names_fields_not_values() -> None:
    with pytest.raises(InvalidInput, match="tenant") as raised:
        starter.parse_request(json.dumps({**REQUEST, "tenant": "Secret Customer Name"}))
    assert "Secret Customer Name" not in str(raised.value)
