"""The shared Lambda adapter: parse without values → guard the bucket → log ids → run → dump."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, TypeAdapter

from convclass.deployment import DATA_BUCKET_ENV
from convclass.errors import InsufficientData, InvalidInput
from convclass.steps.contract import Step, StepEnvironment
from functions.adapter import lambda_handler
from functions.plan import handler as plan_function

SECRET = "Jane Doe, card 4111 1111 1111 1111"


class Ask(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: str
    bucket: str
    rows: int


class Answer(BaseModel):
    rows: int


def _run(ask: Ask, env: StepEnvironment) -> Answer:
    if ask.rows == 0:
        raise InsufficientData("no rows")
    assert env.client("s3") == "s3-client"
    return Answer(rows=ask.rows)


STEP = Step(
    name="count",
    schema=TypeAdapter(Ask),
    run=_run,
    buckets=lambda ask: [ask.bucket],
    log_keys=lambda ask: {"tenant": ask.tenant},
    summary=lambda answer: {"rows": answer.rows},
)


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> tuple[lambda_handler[Ask, Answer], io.StringIO]:
    made = lambda_handler(STEP)
    stream = io.StringIO()
    monkeypatch.setattr(made.logger.registered_handler, "stream", stream)
    monkeypatch.setattr("functions.adapter.boto3.client", lambda service: f"{service}-client")
    monkeypatch.delenv(DATA_BUCKET_ENV, raising=False)
    return made, stream


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_run_logs_its_ids_and_summary_and_returns_the_dumped_result(
    handler: Any, lambda_context: LambdaContext
) -> None:
    made, stream = handler
    assert made({"tenant": "acme", "bucket": "data", "rows": 3}, lambda_context) == {"rows": 3}
    (done,) = [line for line in _lines(stream) if line["message"] == "count done"]
    assert (done["tenant"], done["rows"], done["service"]) == ("acme", 3, "convclass-count")


def test_an_invalid_event_names_fields_never_values(handler: Any, lambda_context: LambdaContext) -> None:
    made, stream = handler
    with pytest.raises(InvalidInput) as raised:
        made({"tenant": "acme", "bucket": "data", "rows": SECRET}, lambda_context)
    assert "count event is invalid: rows:" in str(raised.value)
    assert SECRET not in str(raised.value)
    assert SECRET not in stream.getvalue()


def test_the_deployed_bucket_is_the_only_one_a_step_may_touch(
    handler: Any, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    made, _ = handler
    monkeypatch.setenv(DATA_BUCKET_ENV, "data")
    assert made({"tenant": "acme", "bucket": "data", "rows": 1}, lambda_context) == {"rows": 1}
    with pytest.raises(InvalidInput, match="count may only use the data bucket it is deployed with"):
        made({"tenant": "acme", "bucket": "someone-elses", "rows": 1}, lambda_context)


def test_a_named_error_is_logged_by_name_and_reraised_and_ids_never_outlive_an_invocation(
    handler: Any, lambda_context: LambdaContext
) -> None:
    made, stream = handler
    with pytest.raises(InsufficientData):
        made({"tenant": "acme", "bucket": "data", "rows": 0}, lambda_context)
    made({"tenant": "globex", "bucket": "data", "rows": 2}, lambda_context)
    warned, done = [line for line in _lines(stream) if line["level"] in {"WARNING", "INFO"}][-2:]
    assert (warned["error"], warned["tenant"]) == ("InsufficientData", "acme")
    assert done["tenant"] == "globex"
    assert "acme" not in json.dumps(done)


def test_the_plan_function_is_the_plan_step_behind_the_adapter() -> None:
    assert isinstance(plan_function.handler, lambda_handler)
    assert plan_function.handler.step.name == "plan"
