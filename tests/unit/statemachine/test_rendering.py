"""Properties every rendering must have, checked on the definitions as data."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from typing import Any

import pytest

from convclass import layout
from convclass.errors import SageMakerTransient
from convclass.training import metric_definitions
from statemachine import PipelineSettings, render_inference_workflow, render_training_pipeline
from statemachine import inference as i
from statemachine.asl import SAGEMAKER_ERRORS, SAGEMAKER_RETRY, call_state
from statemachine.placeholders import inference_resources, training_resources
from statemachine.training import names as t

TRAINING = render_training_pipeline(training_resources())
INFERENCE = render_inference_workflow(inference_resources())


def _machines(definition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The definition and every nested Map/Parallel machine."""
    yield definition
    for state in definition["States"].values():
        if "ItemProcessor" in state:
            yield from _machines(state["ItemProcessor"])
        for branch in state.get("Branches", []):
            yield from _machines(branch)


def _targets(state: dict[str, Any]) -> set[str]:
    found = {state[key] for key in ("Next", "Default") if key in state}
    found |= {rule["Next"] for rule in state.get("Choices", [])}
    found |= {rule["Next"] for rule in state.get("Catch", [])}
    return found


def _tasks(machine: dict[str, Any], retried_by: list[Any] | None = None) -> Iterator[tuple[str, Any, Any]]:
    """Every Task state with the Retry of the Parallel it runs in (a SageMaker call's branch), if any."""
    for name, state in machine["States"].items():
        if state["Type"] == "Task":
            yield name, state, retried_by
        for branch in state.get("Branches", []):
            yield from _tasks(branch, state.get("Retry"))
        if "ItemProcessor" in state:
            yield from _tasks(state["ItemProcessor"])


@pytest.mark.parametrize("definition", [TRAINING, INFERENCE], ids=["training", "inference"])
def test_every_task_retries_and_times_out(definition: dict[str, Any]) -> None:
    tasks = list(_tasks(definition))
    assert tasks
    for name, state, enclosing in tasks:
        rules = state.get("Retry") or enclosing
        assert rules, f"{name} has no Retry"
        assert isinstance(state.get("TimeoutSeconds"), int), f"{name} has no TimeoutSeconds"
        for rule in rules:
            assert "States.ALL" not in rule["ErrorEquals"], f"{name} retries every error"


def test_only_throttling_and_internal_sagemaker_errors_are_retried() -> None:
    """A ValidationException shares its error name with throttling: nothing retries those names directly;
    each SageMaker call's branch re-raises transient causes as SageMakerTransient, the only name retried."""
    sagemaker_tasks = [
        (name, enclosing)
        for name, state, enclosing in _tasks(TRAINING)
        if state["Resource"].split(":::", 1)[1].split(":")[-2] == "sagemaker"
    ]
    assert {name for name, _ in sagemaker_tasks} >= {
        call_state(name)
        for name in (t.TRAIN, t.CREATE_MODEL, t.CREATE_ENDPOINT, t.UPDATE_ENDPOINT, t.DELETE_FAILED_ENDPOINT)
    }
    for name, enclosing in sagemaker_tasks:
        assert enclosing == [SAGEMAKER_RETRY], name
    assert SAGEMAKER_RETRY["ErrorEquals"] == [SageMakerTransient.__name__]
    retried = {
        error
        for machine in _machines(TRAINING)
        for state in machine["States"].values()
        for rule in state.get("Retry", [])
        for error in rule["ErrorEquals"]
    }
    assert not retried & set(SAGEMAKER_ERRORS)
    # The branch's classifier: throttling and 5xx are transient, a ValidationException is not.
    branch = TRAINING["States"][t.CREATE_MODEL]["Branches"][0]["States"]
    classify = branch[f"{t.CREATE_MODEL}Error"]
    (transient,) = classify["Choices"]
    patterns = [rule["StringMatches"] for rule in transient["Or"]]
    assert _matches(patterns, "ThrottlingException: Rate exceeded")
    assert _matches(patterns, "(Service: AmazonSageMaker; Status Code: 500; Error Code: InternalFailure)")
    assert not _matches(
        patterns, "(Service: AmazonSageMaker; Status Code: 400; Error Code: ValidationException)"
    )
    assert classify["Default"] == f"{t.CREATE_MODEL}Permanent"


def _matches(patterns: list[str], cause: str) -> bool:
    return any(fnmatch.fnmatchcase(cause, pattern) for pattern in patterns)


@pytest.mark.parametrize("definition", [TRAINING, INFERENCE], ids=["training", "inference"])
def test_graph_is_closed_and_every_state_is_reachable(definition: dict[str, Any]) -> None:
    for machine in _machines(definition):
        states = machine["States"]
        reachable, todo = set(), [machine["StartAt"]]
        while todo:
            name = todo.pop()
            if name in reachable:
                continue
            assert name in states, f"transition to unknown state {name}"
            reachable.add(name)
            todo.extend(_targets(states[name]))
        assert reachable == set(states)


@pytest.mark.parametrize("definition", [TRAINING, INFERENCE], ids=["training", "inference"])
def test_failures_end_with_a_named_error_and_no_jsonata(definition: dict[str, Any]) -> None:
    assert definition["QueryLanguage"] == "JSONPath"
    assert "{%" not in json.dumps(definition)
    for machine in _machines(definition):
        for name, state in machine["States"].items():
            if state["Type"] == "Fail":
                assert "Error" in state or "ErrorPath" in state, name
                assert "Cause" in state or "CausePath" in state, name


def test_training_fail_paths_publish_an_outcome_first() -> None:
    states = TRAINING["States"]
    into_fail = {name for name, state in states.items() if _targets(state) & {t.FAILED, t.REQUEST_REJECTED}}
    assert into_fail == {t.PUBLISH_FAILURE, t.REPORT_REJECTED_REQUEST}


def test_endpoint_wait_loop_is_bounded() -> None:
    settings = PipelineSettings(endpoint_max_polls=7)
    states = render_training_pipeline(training_resources(), settings)["States"]
    assert states[t.COUNT_POLL]["Next"] == t.WAIT_FOR_ENDPOINT
    exits = [rule for rule in states[t.CHECK_ENDPOINT]["Choices"] if rule["Next"] == t.ENDPOINT_NOT_DEPLOYED]
    (bound,) = [
        cond for rule in exits for cond in rule["Or"] if cond.get("Variable") == "$.endpoint_wait.polls"
    ]
    assert bound["NumericGreaterThanEquals"] == 6  # polls are counted from 0
    success = states[t.CHECK_ENDPOINT]["Choices"][0]
    assert success["Next"] == t.WRITE_CHAMPION
    checked = {cond.get("Variable") for cond in success["And"]} | {success["And"][2]["Not"]["Variable"]}
    assert {"$.endpoint.status", "$.endpoint.config_name", "$.endpoint.description"} <= checked


def _call(name: str, states: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Task inside SageMaker call ``name``."""
    call: dict[str, Any] = (states or TRAINING["States"])[name]["Branches"][0]["States"][call_state(name)]
    return call


def test_training_job_is_named_per_attempt_with_the_shared_metric_regexes() -> None:
    assert TRAINING["States"][t.TRAIN]["Parameters"]["attempt.$"] == "$$.State.RetryCount"
    parameters = _call(t.TRAIN)["Parameters"]
    assert "$.attempt" in parameters["TrainingJobName.$"]
    assert parameters["AlgorithmSpecification"]["MetricDefinitions"] == metric_definitions()
    assert parameters["EnableNetworkIsolation"] is True
    assert parameters["OutputDataConfig"]["KmsKeyId"] == training_resources().kms_key_arn
    assert _call(t.TRAIN)["Resource"].endswith("createTrainingJob.sync")


def test_functions_receive_pointers_from_the_plan() -> None:
    states = TRAINING["States"]
    assert states[t.EXPORT]["Parameters"]["Payload.$"] == "$.plan.export"
    assert states[t.PREPROCESS]["Parameters"]["Payload.$"] == "$.plan.preprocess"
    for name in (t.EXPORT, t.PREPROCESS, t.EVALUATE, t.VALIDATE_INPUT):
        assert states[name]["ResultSelector"], f"{name} keeps the whole Lambda response"


def test_export_plans_then_sizes_small_tenants_to_one_task() -> None:
    states = TRAINING["States"]
    plan = states[t.PLAN_EXPORT]
    assert (plan["Parameters"]["Payload"]["action"], plan["Next"]) == ("plan", t.EXPORT_SIZE)
    assert plan["Parameters"]["Payload"]["max_chunks"] == PipelineSettings().export_max_chunks
    assert plan["Catch"][0]["Next"] == t.REPORT_NO_TRAINING  # an empty window is not a failure
    size = states[t.EXPORT_SIZE]
    assert size["Choices"] == [
        {"Variable": "$.export_plan.result.chunked", "BooleanEquals": True, "Next": t.EXPORT_CHUNKS}
    ]
    assert size["Default"] == t.EXPORT
    assert states[t.EXPORT]["Next"] == states[t.FINALIZE_EXPORT]["Next"] == t.PREPROCESS
    # Both paths leave the run manifest's summary where Preprocess and the outcome read it.
    assert states[t.EXPORT]["ResultPath"] == states[t.FINALIZE_EXPORT]["ResultPath"] == "$.export"
    finalize = states[t.FINALIZE_EXPORT]["Parameters"]["Payload"]
    assert finalize["action"] == "finalize"
    assert finalize["chunk_count.$"] == "$.export_plan.result.chunk_count"


@pytest.mark.parametrize(
    ("export_map", "processor"),
    [
        ("distributed", {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}),
        ("inline", {"Mode": "INLINE"}),
    ],
)
def test_chunk_map_renders_distributed_on_aws_and_inline_locally(
    export_map: str, processor: dict[str, str]
) -> None:
    settings = PipelineSettings(export_map=export_map, export_max_concurrency=7)  # type: ignore[arg-type]
    states = render_training_pipeline(training_resources(), settings)["States"]
    chunks = states[t.EXPORT_CHUNKS]
    assert chunks["Type"] == "Map"
    assert chunks["ItemProcessor"]["ProcessorConfig"] == processor
    assert chunks["MaxConcurrency"] == 7
    assert chunks["ItemsPath"] == "$.export_plan.result.chunks"
    assert chunks["ResultPath"] is None  # chunk summaries stay out of the state payload
    selector = chunks["ItemSelector"]
    assert (selector["action"], selector["chunk.$"]) == ("export", "$$.Map.Item.Value")
    assert selector["tenant.$"] == "$.plan.export.tenant"
    task = chunks["ItemProcessor"]["States"][t.EXPORT_CHUNK]
    assert task["End"] is True
    assert task["Parameters"]["Payload.$"] == "$"
    assert task["Parameters"]["FunctionName"] == training_resources().export_function_arn
    # Only the processor differs between the two renderings.
    other = "inline" if export_map == "distributed" else "distributed"
    alt = render_training_pipeline(
        training_resources(),
        PipelineSettings(export_map=other, export_max_concurrency=7),  # type: ignore[arg-type]
    )["States"]
    del alt[t.EXPORT_CHUNKS]["ItemProcessor"]["ProcessorConfig"]
    del chunks["ItemProcessor"]["ProcessorConfig"]
    assert alt == states


def test_inline_export_map_concurrency_is_bounded_by_aws() -> None:
    with pytest.raises(ValueError, match="inline Map"):
        PipelineSettings(export_map="inline", export_max_concurrency=41)
    with pytest.raises(ValueError, match="export concurrency"):
        PipelineSettings(export_max_concurrency=0)


def test_blue_green_update_is_optional() -> None:
    with_rollback = _call(t.UPDATE_ENDPOINT)["Parameters"]["DeploymentConfig"]
    assert with_rollback["AutoRollbackConfiguration"] == {"Alarms.$": "$.plan.deploy.rollback_alarms"}
    rolling = render_training_pipeline(training_resources(), PipelineSettings(blue_green=False))
    assert "DeploymentConfig" not in _call(t.UPDATE_ENDPOINT, rolling["States"])["Parameters"]


def test_approval_gates_time_out_after_the_documented_timeout_without_a_heartbeat() -> None:
    assert PipelineSettings().approval_timeout_seconds == 7 * 24 * 3600
    settings = PipelineSettings(approval_timeout_seconds=100)
    states = render_training_pipeline(training_resources(), settings)["States"]
    for gate in (t.REQUEST_EXPORT_APPROVAL, t.REQUEST_DEPLOY_APPROVAL):
        assert states[gate]["Resource"].endswith(".waitForTaskToken")
        assert states[gate]["TimeoutSeconds"] == 100
        # Nothing sends SendTaskHeartbeat: a heartbeat would end the wait long before the timeout.
        assert "HeartbeatSeconds" not in states[gate]
        detail = states[gate]["Parameters"]["Entries"][0]["Detail"]
        assert detail["task_token.$"] == "$$.Task.Token"
        assert "heartbeat_seconds" not in detail
    with pytest.raises(ValueError, match="positive"):
        PipelineSettings(approval_timeout_seconds=0)


def test_the_export_gate_records_its_answer_and_the_run_commits_last() -> None:
    states = TRAINING["States"]
    gate = states[t.REQUEST_EXPORT_APPROVAL]
    assert gate["Next"] == t.RECORD_EXPORT_CONSENT
    assert gate["Catch"][0] == {
        "ErrorEquals": [t.ERROR_APPROVAL_REJECTED],
        "Next": t.RECORD_EXPORT_REFUSAL,
        "ResultPath": "$.failure",
    }
    consent, refusal = states[t.RECORD_EXPORT_CONSENT], states[t.RECORD_EXPORT_REFUSAL]
    assert (consent["Parameters"]["Payload"]["action"], consent["Next"]) == ("consent", t.PLAN_EXPORT)
    assert consent["Parameters"]["Payload"]["answer.$"] == "$.export_approval"
    assert (refusal["Parameters"]["Payload"]["action"], refusal["Next"]) == ("refuse", t.PUBLISH_FAILURE)
    assert refusal["Catch"][0]["ResultPath"] == "$.consent_error"  # $.failure stays ApprovalRejected
    # The deployment gate's rejection records nothing.
    assert states[t.REQUEST_DEPLOY_APPROVAL]["Catch"][0]["Next"] == t.PUBLISH_FAILURE
    assert states[t.WRITE_CHAMPION]["Next"] == t.HISTORY_TO_COMMIT
    # A roll back read no data and commits none; every other run commits its history last.
    assert states[t.HISTORY_TO_COMMIT]["Default"] == t.COMMIT_HISTORY
    assert states[t.HISTORY_TO_COMMIT]["Choices"][0]["Next"] == t.PUBLISH_SUCCEEDED
    assert states[t.COMMIT_HISTORY]["Next"] == t.PUBLISH_SUCCEEDED
    assert states[t.COMMIT_HISTORY]["Parameters"]["Payload"]["action"] == "commit"


def test_inference_endpoint_name_matches_the_layout() -> None:
    longest = ("a" * 24, "b" * 24)
    assert i.ENDPOINT_NAME_FORMAT.format(*longest) == layout.endpoint_name(*longest)
    classify = INFERENCE["States"][i.CLASSIFY_EMAILS]["ItemProcessor"]["States"][i.CLASSIFY]
    assert classify["Resource"] == "arn:aws:states:::aws-sdk:sagemakerruntime:invokeEndpoint"
    assert classify["Parameters"]["Body.$"] == "$.record.body"


def test_a_rejected_challenger_ends_in_a_succeed_state_whatever_the_publish_does() -> None:
    """No ExecutionsFailed alarm (infra.monitoring.EXECUTION_PROBLEMS) can fire on a rejection."""
    states = TRAINING["States"]
    rejected = states[t.MODEL_REJECTED]
    assert rejected["Parameters"]["Entries"][0]["DetailType"] == "Training Run Succeeded"
    assert rejected["Parameters"]["Entries"][0]["Detail"]["outcome"] == "rejected"
    reachable = _targets(rejected)
    assert reachable == {t.ENDED_REJECTED}
    assert states[t.ENDED_REJECTED]["Type"] == "Succeed"


def test_a_stack_without_a_shared_endpoint_has_no_shared_branch() -> None:
    from dataclasses import replace

    states = render_training_pipeline(replace(training_resources(), shared_endpoint_name=None))["States"]
    shared_states = {t.HOSTING_CHOICE, t.PUBLISH_SHARED_MODEL, t.WARM_SHARED_MODEL, t.WRITE_SHARED_CHAMPION}
    assert shared_states.isdisjoint(states)
    assert states[t.DEPLOY_DECISION]["Default"] == t.CREATE_MODEL
    assert states[t.REQUEST_DEPLOY_APPROVAL]["Next"] == t.CREATE_MODEL
    assert states[t.VALIDATE_INPUT]["Parameters"]["Payload"]["shared_endpoint"] is None


def test_the_shared_branch_publishes_encrypted_and_warms_without_customer_text() -> None:
    states = TRAINING["States"]
    assert states[t.DEPLOY_DECISION]["Default"] == t.HOSTING_CHOICE
    assert states[t.REQUEST_DEPLOY_APPROVAL]["Next"] == t.HOSTING_CHOICE
    copy = states[t.PUBLISH_SHARED_MODEL]["Parameters"]
    assert (copy["ServerSideEncryption"], copy["SSEKMSKeyId"]) == (
        "aws:kms",
        training_resources().kms_key_arn,
    )
    warm = states[t.WARM_SHARED_MODEL]
    assert warm["Parameters"]["EndpointName"] == training_resources().shared_endpoint_name
    assert json.loads(warm["Parameters"]["Body"]) == {"body": "warm-up", "body_content_type": "text/plain"}
    assert warm["Next"] == t.WRITE_SHARED_CHAMPION
    assert states[t.WRITE_SHARED_CHAMPION]["Next"] == t.HISTORY_TO_COMMIT
    assert states[t.WRITE_SHARED_CHAMPION]["Parameters"]["Body"]["hosting"] == "shared"
    assert states[t.WRITE_CHAMPION]["Parameters"]["Body"]["hosting"] == "dedicated"


def test_every_inference_path_to_an_endpoint_reads_the_route_first() -> None:
    iteration = INFERENCE["States"][i.CLASSIFY_EMAILS]["ItemProcessor"]["States"]
    assert iteration[i.CHECK_MESSAGE]["Choices"][0]["Next"] == i.FIND_ROUTE
    assert iteration[i.WAIT_TO_RETRY]["Next"] == i.FIND_ROUTE
    assert iteration[i.CLASSIFY_SHARED]["Catch"] == iteration[i.CLASSIFY]["Catch"]
    assert iteration[i.CLASSIFY_SHARED]["Retry"] == iteration[i.CLASSIFY]["Retry"]
    assert "TargetModel.$" in iteration[i.CLASSIFY_SHARED]["Parameters"]
    assert "TargetModel.$" not in iteration[i.CLASSIFY]["Parameters"]


def test_without_a_shared_endpoint_inference_reads_no_route() -> None:
    from dataclasses import replace

    plain = render_inference_workflow(replace(inference_resources(), shared_endpoint_name=None))
    iteration = plain["States"][i.CLASSIFY_EMAILS]["ItemProcessor"]["States"]
    assert {i.FIND_ROUTE, i.ROUTE_CHOICE, i.CLASSIFY_SHARED}.isdisjoint(iteration)
    assert iteration[i.CHECK_MESSAGE]["Choices"][0]["Next"] == i.CLASSIFY
    assert iteration[i.WAIT_TO_RETRY]["Next"] == i.CLASSIFY
    shared = INFERENCE["States"][i.CLASSIFY_EMAILS]["ItemProcessor"]["States"][i.CLASSIFY_SHARED]
    assert shared["Parameters"]["EndpointName"] == inference_resources().shared_endpoint_name
