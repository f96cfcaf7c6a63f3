"""Requests, plans and names: the contracts the state machine and the functions share."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from convclass import layout
from convclass.events import ChampionRecord, RunOptions, TrainingRunRequest, execution_name
from convclass.export.request import ExportRequest
from convclass.hosting import keys
from convclass.steps import preprocess
from convclass.steps.plan import plan_run

SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
#: Every deployed stack has one unless its sharedEndpoint is disabled.
SHARED = "cc-shared"


def _request(**overrides: object) -> TrainingRunRequest:
    fields: dict[str, object] = {
        "tenant": "acme",
        "classifier": "support",
        "label_field": "intent",
        "data_source": {"kind": "mongodb"},
    }
    return TrainingRunRequest.model_validate({**fields, **overrides})


def test_plan_names_fit_sagemaker_even_for_the_longest_ids() -> None:
    request = _request(tenant="t" * 24, classifier="c" * 24)
    name = execution_name(request.model_copy(update={"business_key": "x" * 64}))
    plan = plan_run(request, execution_name=name, bucket="convclass-data", shared_endpoint=SHARED)
    assert len(name) <= layout.EXECUTION_NAME_MAX
    for value in (plan.deploy.model_name, plan.deploy.endpoint_config_name, plan.deploy.endpoint_name):
        assert SAGEMAKER_NAME.fullmatch(value), value
    retried = f"{plan.training.job_base_name}-1000-9"  # the last redrive's last attempt
    assert SAGEMAKER_NAME.fullmatch(retried)
    assert len(retried) <= layout.SAGEMAKER_NAME_MAX
    assert plan.run_id == layout.validate_run_id(plan.run_id)


def test_plan_keys_stay_under_the_classifier_prefix() -> None:
    plan = plan_run(
        _request(), execution_name="acme-support-2026-11-29", bucket="convclass-data", shared_endpoint=SHARED
    )
    prefix = layout.ClassifierLayout("acme", "support").prefix
    keys = [plan.export.output_prefix, plan.preprocess.output_prefix, plan.deploy.champion_key]
    assert all(key.startswith(prefix) for key in keys)
    uris = [c["DataSource"]["S3DataSource"]["S3Uri"] for c in plan.training.input_data_config]
    uris += [plan.training.output_uri, plan.training.checkpoint_uri]
    assert all(uri.startswith(f"s3://convclass-data/{prefix}") for uri in uris)


def test_plan_steps_are_valid_events_of_the_functions_that_receive_them() -> None:
    plan = plan_run(
        _request(), execution_name="acme-support-k", bucket="convclass-data", shared_endpoint=SHARED
    )
    assert ExportRequest.model_validate(plan.export.model_dump(mode="json")).run_id == plan.run_id
    assert preprocess.STEP.prepare(plan.preprocess.model_dump(mode="json"), {}).run_id == plan.run_id


def test_stopping_condition_follows_spot() -> None:
    spot = plan_run(
        _request(), execution_name="a-b-1", bucket="convclass-data", shared_endpoint=SHARED
    ).training.stopping_condition
    on_demand = plan_run(
        _request(options={"managed_spot": False}),
        execution_name="a-b-1",
        bucket="convclass-data",
        shared_endpoint=SHARED,
    ).training.stopping_condition
    assert set(spot) == {"MaxRuntimeInSeconds", "MaxWaitTimeInSeconds"}
    assert set(on_demand) == {"MaxRuntimeInSeconds"}


def test_execution_names_are_idempotent() -> None:
    assert execution_name(_request()) == execution_name(_request())
    assert execution_name(_request()) != execution_name(_request(label_field="topic"))
    assert execution_name(_request(business_key="2026-11-29")) == "acme--support--2026-11-29"


@pytest.mark.parametrize(
    "overrides",
    [
        {"tenant": "ACME"},
        {"label_field": "has space"},
        {"data_source": {"kind": "files"}},
        {"data_source": {"kind": "mongodb", "uri": "mongodb://user:pw@host"}},
        {"options": {"max_runtime_seconds": 7200, "max_wait_seconds": 3600}},
        {"options": {"min_accuracy": 1.5}},
        {"options": {"unknown": True}},
    ],
)
def test_bad_requests_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _request(**overrides)


def test_option_defaults_are_conservative() -> None:
    options = RunOptions()
    assert not options.export_approval
    assert not options.deploy_approval
    assert not options.full_export
    assert options.managed_spot
    assert options.max_wait_seconds >= options.max_runtime_seconds


def test_training_channels_are_what_the_training_entrypoint_reads() -> None:
    from convclass.training import CHANNEL_FILES

    plan = plan_run(
        _request(), execution_name="acme-support-k", bucket="convclass-data", shared_endpoint=SHARED
    )
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in plan.training.input_data_config
    }
    assert set(channels) == set(CHANNEL_FILES)
    for name, uri in channels.items():
        assert uri.endswith("/" + CHANNEL_FILES[name]), (name, uri)


def test_shared_plan_routes_to_an_immutable_per_run_key_and_never_another_tenants() -> None:
    plans = [
        plan_run(
            _request(tenant=tenant, options={"hosting": "shared"}),
            execution_name=f"{tenant}-support-{run}",
            bucket="convclass-data",
            shared_endpoint="cc-shared",
        )
        for tenant in ("acme", "globex")
        for run in ("r1", "r2")
    ]
    for plan in plans:
        assert plan.hosting == "shared"
        assert plan.shared is not None
        assert plan.serving_endpoint == plan.shared.endpoint_name == "cc-shared"
        assert plan.shared.model_key == keys.SHARED_MODELS_PREFIX + plan.shared.target_model
        assert plan.shared.model_key.startswith(keys.shared_classifier_prefix(plan.tenant, "support"))
        assert plan.shared.copy_source_prefix == "convclass-data/" + layout.ClassifierLayout(
            plan.tenant, "support"
        ).model_output_prefix(plan.run_id)
    assert len({plan.shared.model_key for plan in plans if plan.shared}) == len(plans)


def test_shared_is_the_default_and_needs_a_shared_endpoint_while_dedicated_is_asked_for() -> None:
    assert RunOptions().hosting == "shared"
    with pytest.raises(ValueError, match=r"shared endpoint.*ask for hosting 'dedicated'"):
        plan_run(_request(), execution_name="a-b-1", bucket="convclass-data")
    shared = plan_run(_request(), execution_name="a-b-1", bucket="convclass-data", shared_endpoint=SHARED)
    assert shared.hosting == "shared"
    assert shared.shared is not None
    assert shared.serving_endpoint == SHARED
    dedicated = plan_run(
        _request(options={"hosting": "dedicated"}), execution_name="a-b-1", bucket="convclass-data"
    )
    assert (dedicated.hosting, dedicated.shared) == ("dedicated", None)
    assert dedicated.serving_endpoint == dedicated.deploy.endpoint_name


def test_champion_records_read_old_and_shared_forms() -> None:
    common = {
        "run_id": "r1",
        "model_artifacts": "s3://b/k",
        "training_job_name": "j",
        "metrics": {"accuracy": 0.9, "macro_f1": 0.8},
        "execution": "arn",
        "deployed_at": "2026-12-06T00:00:00Z",
    }
    old = ChampionRecord.model_validate({**common, "model_name": "m", "endpoint_config_name": "c"})
    assert old.hosting == "dedicated"
    shared = ChampionRecord.model_validate(
        {**common, "hosting": "shared", "endpoint_name": "cc-shared", "target_model": "a/b/r1/model.tar.gz"}
    )
    assert (shared.endpoint_name, shared.target_model) == ("cc-shared", "a/b/r1/model.tar.gz")
    with pytest.raises(ValidationError):
        ChampionRecord.model_validate({**common, "hosting": "shared", "endpoint_name": "cc-shared"})
    with pytest.raises(ValidationError):
        ChampionRecord.model_validate({**common, "model_name": "m"})
