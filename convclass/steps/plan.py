"""``ValidateInput``: the training pipeline's first state turns a ``TrainingRunRequest`` into a ``RunPlan``.

Every S3 key and SageMaker name the run uses is computed here once (by :mod:`convclass.layout`), so the state
machine only copies pointers around. A request that does not validate ends the run with ``InvalidInput``
naming the fields at fault, before anything is exported or paid for.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter

from convclass import layout
from convclass.errors import InvalidInput, validated
from convclass.events import (
    DeployStep,
    EvaluationStep,
    ExportStep,
    PreprocessStep,
    Redeploy,
    RunPlan,
    SharedDeployStep,
    TrainingRunRequest,
    TrainingStep,
)
from convclass.hosting import keys
from convclass.steps.contract import Step, StepEnvironment, run_ids


class PlanEvent(BaseModel):
    """What the state machine sends: the raw execution input plus the execution's identity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request: Any
    execution_name: str
    execution: str
    bucket: str
    #: The stack's shared multi-model endpoint (None: the stack has none, ``shared`` runs are refused).
    shared_endpoint: str | None = None


def plan_run(
    request: TrainingRunRequest, *, execution_name: str, bucket: str, shared_endpoint: str | None = None
) -> RunPlan:
    """Compute every key and name of one run; the run id is derived from the execution name.

    ``shared_endpoint``: the stack's shared multi-model endpoint; a ``shared`` run needs one.
    """
    run_id = layout.run_id_for_execution(execution_name)
    tenant, classifier = request.tenant, request.classifier
    where = layout.ClassifierLayout(tenant, classifier)
    opts = request.options
    shared: SharedDeployStep | None = None
    if opts.hosting == "shared":
        if not shared_endpoint:
            raise ValueError(
                "hosting 'shared' (the default) needs a shared endpoint, and this stack has none: "
                "ask for hosting 'dedicated'"
            )
        shared = SharedDeployStep(
            endpoint_name=shared_endpoint,
            target_model=keys.target_model(tenant, classifier, run_id),
            model_key=keys.shared_model_key(tenant, classifier, run_id),
            copy_source_prefix=f"{bucket}/{where.model_output_prefix(run_id)}",
            champion_key=where.champion_key,
        )
    dataset_channels: dict[str, str] = {split: where.split_key(run_id, split) for split in layout.SPLITS}
    dataset_channels["tokenizer"] = where.tokenizer_key(run_id)
    dataset_channels["manifest"] = where.dataset_manifest_key(run_id)
    stopping = {"MaxRuntimeInSeconds": opts.max_runtime_seconds}
    if opts.managed_spot:
        stopping["MaxWaitTimeInSeconds"] = opts.max_wait_seconds
    endpoint = layout.endpoint_name(tenant, classifier)
    min_accuracy, tolerance = opts.min_accuracy, opts.tolerance
    if request.redeploy is not None:
        _check_redeploy(request.redeploy, where, bucket)
        # The model was chosen by a person: the comparison reports the figures but never blocks it.
        min_accuracy, tolerance = 0.0, 1.0
    return RunPlan(
        tenant=tenant,
        classifier=classifier,
        run_id=run_id,
        execution_name=execution_name,
        bucket=bucket,
        export_approval=opts.export_approval and request.redeploy is None,
        deploy_approval=opts.deploy_approval,
        redeploy_only=request.redeploy is not None,
        request=request,
        export=ExportStep(
            tenant=tenant,
            classifier=classifier,
            label_field=request.label_field,
            run_id=run_id,
            data_source=request.data_source,
            full_export=opts.full_export,
            bucket=bucket,
            output_prefix=where.export_prefix(run_id),
            manifest_key=where.export_manifest_key(run_id),
            consent_key=where.consent_key,
            watermark_key=where.watermark_key,
        ),
        preprocess=PreprocessStep(
            tenant=tenant,
            classifier=classifier,
            label_field=request.label_field,
            run_id=run_id,
            bucket=bucket,
            input_prefix=where.export_prefix(run_id),
            input_manifest_key=where.export_manifest_key(run_id),
            output_prefix=where.dataset_prefix(run_id),
            min_examples_per_label=opts.min_examples_per_label,
        ),
        training=TrainingStep(
            job_base_name=layout.training_job_base_name(tenant, classifier, run_id),
            hyperparameters=dict(opts.hyperparameters),
            input_data_config=[
                {
                    "ChannelName": name,
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": layout.s3_uri(bucket, key),
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                    "InputMode": "File",
                }
                for name, key in dataset_channels.items()
            ],
            output_uri=layout.s3_uri(bucket, where.model_output_prefix(run_id)),
            checkpoint_uri=layout.s3_uri(bucket, where.checkpoint_prefix(run_id)),
            instance_type=opts.training_instance_type,
            managed_spot=opts.managed_spot,
            stopping_condition=stopping,
        ),
        evaluation=EvaluationStep(
            tenant=tenant,
            classifier=classifier,
            run_id=run_id,
            bucket=bucket,
            champion_key=where.champion_key,
            endpoint_name=endpoint,
            min_accuracy=min_accuracy,
            tolerance=tolerance,
            redeploy=request.redeploy is not None,
        ),
        deploy=DeployStep(
            model_name=layout.model_name(tenant, classifier, run_id),
            endpoint_config_name=layout.endpoint_config_name(tenant, classifier, run_id),
            endpoint_name=endpoint,
            instance_type=opts.endpoint_instance_type,
            instance_count=opts.endpoint_instance_count,
            rollback_alarms=[{"AlarmName": name} for name in layout.endpoint_alarm_names(tenant, classifier)],
            champion_key=where.champion_key,
        ),
        hosting=opts.hosting,
        shared=shared,
        serving_endpoint=shared.endpoint_name if shared else endpoint,
    )


def _check_redeploy(redeploy: Redeploy, where: layout.ClassifierLayout, bucket: str) -> None:
    """A roll back may only name a model archive of the same tenant's classifier, in the run's bucket."""
    archive_bucket, key = layout.parse_s3_uri(redeploy.model_artifacts)
    if archive_bucket != bucket or not key.startswith(where.model_output_prefix(redeploy.run_id)):
        raise ValueError("redeploy.model_artifacts must be a model of this classifier's run redeploy.run_id")
    if not key.endswith("/model.tar.gz") or ".." in key.split("/"):
        raise ValueError("redeploy.model_artifacts must name a model.tar.gz")


def run(event: PlanEvent, env: StepEnvironment) -> RunPlan:
    """The plan of the run the state machine's input asks for (the request is validated here, not before:
    an invalid request must end the run through its ``InvalidInput`` branch)."""
    request = validated(TrainingRunRequest, event.request, what="training request")
    try:
        return plan_run(
            request,
            execution_name=event.execution_name,
            bucket=event.bucket,
            shared_endpoint=event.shared_endpoint,
        )
    except ValueError as exc:
        raise InvalidInput(f"cannot plan this run: {exc}") from None


STEP = Step(
    name="plan",
    schema=TypeAdapter(PlanEvent),
    run=run,
    buckets=lambda event: [event.bucket],
    summary=run_ids,
)
