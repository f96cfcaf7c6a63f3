"""A run that failed on a passing fault resumes with ``convclass redrive`` where it stopped, and succeeds.

The evaluate function fails with an unexpected error (not one of ``errors.FINAL_STEP_ERRORS``): the run ends
FAILED at Evaluate itself, not in a Fail state, so RedriveExecution resumes there. Nothing before Evaluate
runs again (the training job is not paid for twice), and the run then deploys as if nothing had happened.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pipeline_data import conversation, drop, grant

from convclass import layout
from convclass.operator import Operator
from convclass.stack import StackOutputs
from convclass_local import moto_shims
from convclass_local.workflow_lab import REGION, World, request, run_handler
from statemachine.history import wait_for
from statemachine.training import names as t

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("scenarios-history"),
    pytest.mark.usefixtures("real_engine_hooks"),
]


class EvaluateDownOnce:
    """The real handlers, except that the first Evaluate call fails as a crashed function would."""

    def __init__(self) -> None:
        self.failed = 0

    def __call__(self, invocation: moto_shims.LambdaInvocation) -> tuple[str, bool]:
        event = invocation.event if isinstance(invocation.event, dict) else {}
        is_evaluate = invocation.function_name.endswith("-evaluate") and "action" not in event
        if is_evaluate and not self.failed:
            self.failed += 1
            crash = {"errorType": "RuntimeError", "errorMessage": "the function crashed"}
            return json.dumps(crash), True
        return run_handler(invocation)


def test_a_redriven_run_resumes_at_the_failed_step_and_succeeds(world: World) -> None:
    tenant = "redrive"
    grant(tenant)
    drop(tenant, "day-1", (conversation(tenant, i, datetime(2026, 1, 6, tzinfo=UTC)) for i in range(36)))
    flaky = EvaluateDownOnce()
    moto_shims.update(lambda_dispatch=flaky)
    name = "redrive--support--1"
    arn, failed = world.run_training(request(tenant, min_examples_per_label=3, hosting="dedicated"), name)

    assert failed.status == "FAILED"
    assert failed.error == "RuntimeError"
    assert failed.entered[-1] == t.EVALUATE  # the run stopped in the step, not in a Fail state
    assert t.PUBLISH_FAILURE not in failed.entered
    trained = failed.entered.count(t.TRAIN)

    moto_shims.update(lambda_dispatch=run_handler)
    operator = Operator(StackOutputs(region=REGION, training_state_machine_arn=world.training_arn))
    assert operator.redrive(name) == arn
    resumed = wait_for(world.client("stepfunctions"), arn, timeout_s=30)

    assert resumed.status == "SUCCEEDED", (resumed.error, resumed.cause)
    assert resumed.entered.count(t.VALIDATE_INPUT) == 1
    assert resumed.entered.count(t.TRAIN) == trained  # the training job is not run again
    assert resumed.entered.count(t.EVALUATE) == 2
    assert resumed.entered[-1] == t.SUCCEEDED
    endpoint = world.client("sagemaker").describe_endpoint(
        EndpointName=layout.endpoint_name(tenant, "support")
    )
    assert endpoint["EndpointStatus"] == "InService"
