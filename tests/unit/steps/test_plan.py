"""The plan step: a RunPlan for a valid request, InvalidInput naming fields (never values) otherwise."""

from __future__ import annotations

import pytest

from convclass.deployment import DATA_BUCKET_ENV
from convclass.errors import InvalidInput
from convclass.events import RunPlan
from convclass.steps import plan
from convclass.steps.contract import StepEnvironment

REQUEST = {
    "tenant": "acme",
    "classifier": "support",
    "label_field": "intent",
    "data_source": {"kind": "mongodb"},
}


def _event(request: object, **overrides: str) -> dict[str, object]:
    return {
        "request": request,
        "execution_name": "acme-support-1",
        "execution": "arn:aws:states:eu-west-1:123456789012:execution:training:acme-support-1",
        "bucket": "convclass-data",
        "shared_endpoint": "convclass-shared",
        **overrides,
    }


def plan_from_event(event: object, *, deployed_bucket: str | None = None) -> RunPlan:
    environ = {DATA_BUCKET_ENV: deployed_bucket} if deployed_bucket else {}

    def no_clients(service: str) -> object:
        raise AssertionError(f"planning needs no AWS client, asked for {service}")

    return plan.STEP.run(plan.STEP.prepare(event, environ), StepEnvironment(environ, no_clients))


def test_valid_request_is_planned() -> None:
    plan = plan_from_event(_event(REQUEST), deployed_bucket="convclass-data")
    assert (plan.tenant, plan.run_id, plan.bucket) == ("acme", "acme-support-1", "convclass-data")
    assert (plan.hosting, plan.serving_endpoint) == ("shared", "convclass-shared")


def test_a_stack_without_a_shared_endpoint_plans_only_runs_that_ask_for_dedicated() -> None:
    event = {key: value for key, value in _event(REQUEST).items() if key != "shared_endpoint"}
    with pytest.raises(InvalidInput, match="ask for hosting 'dedicated'"):
        plan_from_event(event)
    dedicated = plan_from_event({**event, "request": {**REQUEST, "options": {"hosting": "dedicated"}}})
    assert dedicated.hosting == "dedicated"


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ({**REQUEST, "tenant": "Secret Customer Name"}, "tenant"),
        ({key: value for key, value in REQUEST.items() if key != "label_field"}, "label_field"),
        ("not an object", "<root>"),
        ({**REQUEST, "options": {"min_accuracy": "high"}}, "options.min_accuracy"),
    ],
)
def test_invalid_request_names_the_field_not_the_value(request_: object, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        plan_from_event(_event(request_))
    assert field in str(raised.value)
    assert "Secret Customer Name" not in str(raised.value)


def test_plan_refuses_another_bucket() -> None:
    with pytest.raises(InvalidInput, match="bucket"):
        plan_from_event(_event(REQUEST, bucket="someone-elses-bucket"), deployed_bucket="convclass-data")


def test_malformed_event_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="execution_name"):
        plan_from_event({"request": REQUEST})
