"""A roll back request (``TrainingRunRequest.redeploy``): planned as a deploy-only run of the same tenant's
earlier model, whose comparison can never block it."""

from __future__ import annotations

import pytest

from convclass import layout
from convclass.events import DataSource, Redeploy, RunOptions, TrainingRunRequest
from convclass.steps.plan import plan_run

BUCKET = "convclass-test-data"
SHARED = "convclass-test-shared"


def _request(model_artifacts: str, run_id: str = "acme-intent-first") -> TrainingRunRequest:
    return TrainingRunRequest(
        tenant="acme",
        classifier="intent",
        label_field="intent",
        data_source=DataSource(kind="files", uri=f"s3://{BUCKET}/sources/acme/"),
        options=RunOptions(export_approval=True, min_accuracy=0.9, tolerance=0.01),
        redeploy=Redeploy(run_id=run_id, model_artifacts=model_artifacts, training_job_name="job-0"),
    )


def _archive(tenant: str = "acme", run_id: str = "acme-intent-first") -> str:
    key = layout.ClassifierLayout(tenant, "intent").model_output_prefix(run_id) + "job-0/output/model.tar.gz"
    return layout.s3_uri(BUCKET, key)


def test_a_redeploy_plan_skips_training_and_never_blocks_the_chosen_model() -> None:
    plan = plan_run(
        _request(_archive()), execution_name="acme-intent-rollback-1", bucket=BUCKET, shared_endpoint=SHARED
    )
    assert plan.redeploy_only is True
    assert plan.export_approval is False
    assert (plan.evaluation.min_accuracy, plan.evaluation.tolerance) == (0.0, 1.0)
    # New SageMaker names (the rollback's own run), the earlier model's archive.
    assert plan.deploy.model_name == layout.model_name("acme", "intent", plan.run_id)
    assert plan.request.redeploy is not None
    assert plan.request.redeploy.model_artifacts == _archive()


def test_a_plain_run_is_not_a_redeploy() -> None:
    request = _request(_archive()).model_copy(update={"redeploy": None})
    plan = plan_run(request, execution_name="acme-intent-2", bucket=BUCKET, shared_endpoint=SHARED)
    assert plan.redeploy_only is False
    assert plan.export_approval is True
    assert (plan.evaluation.min_accuracy, plan.evaluation.tolerance) == (0.9, 0.01)


@pytest.mark.parametrize(
    ("archive", "run_id"),
    [
        (_archive(tenant="acme-shop"), "acme-intent-first"),  # another tenant's model
        (_archive(run_id="acme-intent-other"), "acme-intent-first"),  # another run than named
        (_archive().replace(BUCKET, "someone-elses-bucket"), "acme-intent-first"),
        (_archive().replace("model.tar.gz", "output.tar.gz"), "acme-intent-first"),
    ],
)
def test_a_redeploy_may_only_name_this_classifiers_model(archive: str, run_id: str) -> None:
    with pytest.raises(ValueError, match=r"redeploy\.model_artifacts"):
        plan_run(
            _request(archive, run_id),
            execution_name="acme-intent-rollback-1",
            bucket=BUCKET,
            shared_endpoint=SHARED,
        )
