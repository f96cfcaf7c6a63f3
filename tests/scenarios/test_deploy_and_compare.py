"""Deployment and comparison scenarios on the embedded AWS: real pipeline, handlers and training entrypoint.

Each scenario is a function returning countable facts (what a benchmark reports); its test asserts them.

* a retrain while a champion serves: the champion is given to the training job and scored on the
  challenger's held-out split, and Evaluate decides with both figures of that one split;
* a tenant whose endpoint is ``Failed``: the run deletes it, waits until it is gone and creates it again;
* a challenger the comparison rejects: the run ends SUCCEEDED with a ``Training Run Succeeded`` event of
  outcome ``rejected``, and the champion keeps serving.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from scenario_support import LABEL_FIELD, BusObserver, drop_records, local_request

from convclass import layout
from convclass.artifacts import ModelMetrics, extract_model_tar, read_metrics
from convclass.events import (
    RUN_FAILED,
    RUN_SUCCEEDED,
    ChampionRecord,
    RunOutcome,
    execution_name,
)
from convclass.export.consent import ConsentRecord, record_consent
from convclass.training.champion import score_champion
from convclass.training.data import CHANNEL_FILES, load_training_data
from convclass_local.generator import generate_emails
from convclass_local.runtime import LocalRuntime
from statemachine.history import ExecutionRecord, wait_for
from statemachine.training import names as t

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("scenarios-deploy")]

EMAILS = 400
#: Small and quick: what the scenarios check is the contract, not the model's quality.
HYPERPARAMETERS = {"architecture": "cnn", "epochs": "2", "max_length": "48"}
RUN_TIMEOUT_S = 300.0


@dataclass
class Stack:
    runtime: LocalRuntime
    observer: BusObserver
    scratch: Path

    def client(self, service: str) -> Any:
        return self.runtime.aws.client(service)

    @property
    def bucket(self) -> str:
        return self.runtime.bucket

    def outcomes(self, execution: str) -> list[RunOutcome]:
        """The run's outcome events (``Training Run Succeeded`` / ``Failed``) published on the bus."""
        self.observer.wait_for(
            lambda seen: any(e["detail"].get("execution") == execution for e in seen), timeout_s=30
        )
        return [
            RunOutcome.model_validate(event["detail"])
            for event in self.observer.of_type(RUN_SUCCEEDED, RUN_FAILED)
            if event["detail"].get("execution") == execution
        ]

    def train(
        self, tenant: str, run: int, *, seed: int, scramble: bool = False, **options: Any
    ) -> tuple[str, ExecutionRecord]:
        """Drop a snapshot of ``EMAILS`` labelled emails for ``tenant``; run the training pipeline on it.

        ``scramble``: labels shuffled across emails (seeded), so no model can learn them.
        """
        records = generate_emails(EMAILS, seed=seed, tenant_id=tenant, label_field=LABEL_FIELD)
        if scramble:
            labels = [record["labels"][LABEL_FIELD] for record in records]
            random.Random(seed).shuffle(labels)
            for record, label in zip(records, labels, strict=True):
                record["labels"] = {**record["labels"], LABEL_FIELD: label}
        uri = drop_records(self.runtime, tenant, records, self.scratch)
        request = local_request(
            tenant, "support", uri, business_key=f"run-{run}", hyperparameters=HYPERPARAMETERS, **options
        )
        sfn = self.client("stepfunctions")
        execution = sfn.start_execution(
            stateMachineArn=self.runtime.outputs.require("training_state_machine_arn"),
            name=execution_name(request),
            input=request.model_dump_json(),
        )["executionArn"]
        return execution, wait_for(sfn, execution, timeout_s=RUN_TIMEOUT_S, poll_s=0.5)

    def champion(self, tenant: str) -> ChampionRecord:
        key = layout.ClassifierLayout(tenant, "support").champion_key
        body = self.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return ChampionRecord.model_validate_json(body)

    def metrics(self, model_artifacts: str, into: Path) -> ModelMetrics:
        bucket, key = layout.parse_s3_uri(model_artifacts)
        into.mkdir(parents=True, exist_ok=True)
        archive = into / "model.tar.gz"
        self.client("s3").download_file(bucket, key, str(archive))
        extract_model_tar(archive, into / "model")
        return read_metrics(into / "model" / "metrics.json")


def _consent(stack: Stack, tenant: str) -> None:
    record_consent(
        stack.client("s3"),
        stack.bucket,
        layout.ClassifierLayout(tenant, "support"),
        ConsentRecord(approved=True, approved_by="scenario", approved_at="2026-12-01T00:00:00Z"),
        kms_key_arn=stack.runtime.outputs.require("kms_key_arn"),
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with LocalRuntime(workdir=tmp_path_factory.mktemp("convclass"), persist=False) as runtime:
        observer = BusObserver(runtime, "deploy-and-compare-observer")
        yield Stack(runtime, observer, tmp_path_factory.mktemp("drops"))


# --------------------------------------------------------------------------------------------- scenarios


def champion_scored_on_the_challengers_split(stack: Stack, workdir: Path) -> dict[str, Any]:
    """Train, deploy; retrain on other data: the champion's figure must be its score on the new test split."""
    tenant = "fair"
    _consent(stack, tenant)
    first_execution, first = stack.train(tenant, 1, seed=1, min_accuracy=0.0)
    assert first.status == "SUCCEEDED", (first.error, first.cause)
    champion = stack.champion(tenant)

    second_execution, second = stack.train(tenant, 2, seed=2, min_accuracy=0.0, tolerance=1.0)
    assert second.status == "SUCCEEDED", (second.error, second.cause)
    (outcome,) = stack.outcomes(second_execution)
    assert outcome.evaluation is not None
    evaluation = outcome.evaluation

    # What the second training job was given and what it wrote.
    assert outcome.outcome == "deployed"  # tolerance 1.0: the second model replaces the first
    job = stack.client("sagemaker").describe_training_job(
        TrainingJobName=stack.champion(tenant).training_job_name
    )
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]}
    metrics = stack.metrics(job["ModelArtifacts"]["S3ModelArtifacts"], workdir / "challenger")
    assert metrics.champion is not None

    # Recompute the champion's figure independently on the second run's own test split.
    data_dir = workdir / "data"
    for channel, name in CHANNEL_FILES.items():
        bucket, key = layout.parse_s3_uri(channels[channel])
        (data_dir / channel).mkdir(parents=True, exist_ok=True)
        stack.client("s3").download_file(bucket, key, str(data_dir / channel / name))
    held_out = load_training_data(data_dir).test
    bucket, key = layout.parse_s3_uri(champion.model_artifacts)
    stack.client("s3").download_file(bucket, key, str(workdir / "champion.tar.gz"))
    rescored = score_champion(
        workdir / "champion.tar.gz",
        held_out.texts,
        held_out.labels,
        cleaning_version=metrics.versions["cleaning"],
        evaluated_on="test",
    )
    return {
        "runs": 2,
        "runs_succeeded": sum(r.status == "SUCCEEDED" for r in (first, second)),
        "champion_channel": channels.get("champion"),
        "champion_archive": champion.model_artifacts,
        "test_rows": metrics.data.test,
        "champion_rows": metrics.champion.rows,
        "champion_accuracy_in_metrics": metrics.champion.accuracy,
        "champion_accuracy_rescored": rescored.accuracy,
        "champion_accuracy_in_event": evaluation.champion.accuracy if evaluation.champion else None,
        "champion_accuracy_own_split": champion.metrics.accuracy,
        "first_run_channels": sorted(
            c["ChannelName"]
            for c in stack.client("sagemaker").describe_training_job(
                TrainingJobName=champion.training_job_name
            )["InputDataConfig"]
        ),
        "first_execution": first_execution,
    }


def failed_endpoint_recreated(stack: Stack) -> dict[str, Any]:
    """A tenant's endpoint went ``Failed`` (it accepts only DeleteEndpoint): the next run recreates it."""
    from moto.sagemaker.models import sagemaker_backends

    tenant = "phoenix"
    _consent(stack, tenant)
    endpoint = layout.endpoint_name(tenant, "support")
    sagemaker = stack.client("sagemaker")
    role = "arn:aws:iam::123456789012:role/convclass-sagemaker"
    sagemaker.create_model(
        ModelName=f"{endpoint}-broken", ExecutionRoleArn=role, PrimaryContainer={"Image": "x:1"}
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{endpoint}-broken",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": f"{endpoint}-broken",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=f"{endpoint}-broken")
    backend = sagemaker_backends["123456789012"][stack.runtime.aws.region]
    backend.endpoints[endpoint].endpoint_status = "Failed"
    assert sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "Failed"

    # Its own endpoint is what went Failed: this classifier asks for dedicated hosting.
    execution, run = stack.train(tenant, 1, seed=3, min_accuracy=0.0, hosting="dedicated")
    described = sagemaker.describe_endpoint(EndpointName=endpoint)
    return {
        "status": run.status,
        "error": run.error,
        "deletes": run.entered.count(t.DELETE_FAILED_ENDPOINT),
        "creates": run.entered.count(t.CREATE_ENDPOINT),
        "updates": run.entered.count(t.UPDATE_ENDPOINT),
        "endpoint_status": described["EndpointStatus"],
        "endpoint_config": described["EndpointConfigName"],
        "champion_config": stack.champion(tenant).endpoint_config_name,
        "outcomes": [o.outcome for o in stack.outcomes(execution)],
    }


def rejected_model_succeeds(stack: Stack) -> dict[str, Any]:
    """A challenger below the minimum accuracy: SUCCEEDED, outcome ``rejected``, nothing deployed."""
    tenant = "modest"
    _consent(stack, tenant)
    execution, run = stack.train(tenant, 1, seed=4, scramble=True, min_accuracy=0.9)
    outcomes = stack.outcomes(execution)
    evaluation = outcomes[0].evaluation if outcomes else None
    endpoints = stack.client("sagemaker").list_endpoints(NameContains=layout.endpoint_name(tenant, "support"))
    return {
        "status": run.status,
        "error": run.error,
        "outcomes": [(o.outcome, o.error) for o in outcomes],
        "challenger_accuracy": evaluation.challenger.accuracy if evaluation else None,
        "deploy": evaluation.deploy if evaluation else None,
        "last_state": run.entered[-1],
        "endpoints": len(endpoints["Endpoints"]),
    }


# ------------------------------------------------------------------------------------------------- tests


def test_champion_and_challenger_are_scored_on_one_test_split(stack: Stack, tmp_path: Path) -> None:
    facts = champion_scored_on_the_challengers_split(stack, tmp_path)
    assert facts["runs_succeeded"] == 2
    assert "champion" not in facts["first_run_channels"]
    assert facts["champion_channel"] == facts["champion_archive"]
    assert facts["champion_rows"] == facts["test_rows"]
    assert facts["champion_accuracy_in_metrics"] == pytest.approx(facts["champion_accuracy_rescored"])
    assert facts["champion_accuracy_in_event"] == pytest.approx(facts["champion_accuracy_in_metrics"])


def test_a_failed_endpoint_is_deleted_and_recreated(stack: Stack) -> None:
    facts = failed_endpoint_recreated(stack)
    assert facts["status"] == "SUCCEEDED", facts
    assert (facts["deletes"], facts["creates"], facts["updates"]) == (1, 1, 0)
    assert facts["endpoint_status"] == "InService"
    assert facts["endpoint_config"] == facts["champion_config"]
    assert facts["outcomes"] == ["deployed"]


def test_a_rejected_model_ends_succeeded_with_outcome_rejected(stack: Stack) -> None:
    facts = rejected_model_succeeds(stack)
    assert facts["challenger_accuracy"] is not None
    assert facts["challenger_accuracy"] < 0.9, "the scenario needs a challenger below the minimum"
    assert facts["status"] == "SUCCEEDED", facts
    assert facts["error"] is None
    assert facts["outcomes"] == [("rejected", None)]
    assert facts["deploy"] is False
    assert facts["last_state"] == t.ENDED_REJECTED
    assert facts["endpoints"] == 0
