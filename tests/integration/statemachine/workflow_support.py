"""Test-only helpers on top of the workflow lab: model archives and a recording training runner."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import boto3

from convclass_local.workflow_lab import (  # noqa: F401  (re-exported for the test modules)
    BUCKET,
    REGION,
    SHARED_ENDPOINT,
    World,
    build_world,
    hooks,
    request,
)


def metrics_json(accuracy: float, champion_accuracy: float | None = None) -> bytes:
    """A valid metrics.json (convclass.artifacts.ModelMetrics) with the given test accuracy, and the
    champion's figure on the same split when ``champion_accuracy`` is given."""
    from convclass.artifacts import ChampionScore, DataSizes, LabelMetrics, ModelMetrics

    labels = ("card_lost", "refund")
    metrics = ModelMetrics(
        accuracy=accuracy,
        macro_f1=accuracy - 0.02,
        weighted_f1=accuracy - 0.01,
        expected_calibration_error=0.03,
        per_label={label: LabelMetrics(precision=0.9, recall=0.9, f1=0.9, support=50) for label in labels},
        labels=labels,
        confusion_matrix=((45, 5), (5, 45)),
        data=DataSizes(train=800, validation=100, test=100, n_labels=2),
        training_seconds=12.5,
        epochs=3,
        architecture="test",
        champion=None
        if champion_accuracy is None
        else ChampionScore(
            evaluated_on="test",
            rows=100,
            unknown_label_rows=0,
            accuracy=champion_accuracy,
            macro_f1=champion_accuracy - 0.02,
        ),
    )
    return metrics.model_dump_json().encode()


def model_tar(accuracy: float, champion_accuracy: float | None = None) -> bytes:
    """A model.tar.gz holding metrics.json first (as training packs it) and a stand-in SavedModel file."""
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in (
            ("metrics.json", metrics_json(accuracy, champion_accuracy)),
            ("model/1/saved_model.pb", b"\0" * 64),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@dataclass
class FakeTrainingOutcome:
    status: str
    failure_reason: str = ""
    model_artifacts: str = ""


@dataclass
class RecordingRunner:
    """A training runner that records each CreateTrainingJob request and ends the job as told.

    Given a ``champion`` channel, it writes ``champion_accuracy`` as the champion's figure (what the real
    training job computes on the challenger's test split).
    """

    status: str = "Completed"
    failure_reason: str = ""
    accuracy: float = 0.9
    champion_accuracy: float = 0.9
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, job: Any) -> FakeTrainingOutcome:
        self.requests.append(dict(job))
        if self.status != "Completed":
            return FakeTrainingOutcome(self.status, self.failure_reason)
        output = job["OutputDataConfig"]["S3OutputPath"].removeprefix(f"s3://{BUCKET}/")
        key = f"{output}{job['TrainingJobName']}/output/model.tar.gz"
        channels = {channel["ChannelName"] for channel in job.get("InputDataConfig") or []}
        champion = self.champion_accuracy if "champion" in channels else None
        boto3.client("s3", region_name=REGION).put_object(
            Bucket=BUCKET, Key=key, Body=model_tar(self.accuracy, champion)
        )
        return FakeTrainingOutcome("Completed", model_artifacts=f"s3://{BUCKET}/{key}")
