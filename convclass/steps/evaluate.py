"""``Evaluate``: challenger vs champion, the rule that decides whether a newly trained model replaces the
deployed one.

Both figures come from the challenger's metrics.json: its own, and the champion's on the same held-out split
(``ModelMetrics.champion``, computed by the training job that was given the champion's model).
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from typing import IO

from pydantic import BaseModel, ConfigDict, TypeAdapter

from convclass.artifacts import METRICS_FILE, ModelMetrics
from convclass.errors import IncompatibleModel
from convclass.events import EvaluationResult, EvaluationStep, HeadlineMetrics
from convclass.layout import parse_s3_uri
from convclass.steps.champion import current_champion
from convclass.steps.contract import Step, StepEnvironment, run_ids

#: metrics.json is a few KB; anything larger is not a metrics file.
_MAX_METRICS_BYTES = 4 * 1024 * 1024


def headline(metrics: ModelMetrics) -> HeadlineMetrics:
    return HeadlineMetrics(accuracy=metrics.accuracy, macro_f1=metrics.macro_f1)


def decide(
    challenger: HeadlineMetrics, champion: HeadlineMetrics | None, *, min_accuracy: float, tolerance: float
) -> tuple[bool, str]:
    """Deploy iff the challenger reaches ``min_accuracy`` and is not worse than the champion beyond
    ``tolerance`` in accuracy nor in macro-F1.

    Accuracy is the tenant's figure (the share of emails labelled right; ``min_accuracy`` is set in it).
    Macro-F1 guards the rare labels: where a few labels hold most emails, a challenger can keep the
    accuracy while it stops predicting the small labels, and only macro-F1 (every label counting the same)
    shows that. Model selection inside the training job uses validation macro-F1 for the same reason.
    """
    if challenger.accuracy < min_accuracy:
        return False, f"challenger accuracy {challenger.accuracy:.4f} is below the minimum {min_accuracy:.4f}"
    if champion is None:
        return (
            True,
            f"challenger accuracy {challenger.accuracy:.4f} reaches the minimum and no champion is deployed",
        )
    floor = champion.accuracy - tolerance
    if challenger.accuracy < floor:
        return False, (
            f"challenger accuracy {challenger.accuracy:.4f} is below the champion's {champion.accuracy:.4f} "
            f"by more than the tolerance {tolerance:.4f}"
        )
    if challenger.macro_f1 < champion.macro_f1 - tolerance:
        return False, (
            f"challenger macro-F1 {challenger.macro_f1:.4f} is below the champion's {champion.macro_f1:.4f} "
            f"by more than the tolerance {tolerance:.4f} (its rare labels got worse)"
        )
    return True, (
        f"challenger accuracy {challenger.accuracy:.4f} is within {tolerance:.4f} of or above the champion's "
        f"{champion.accuracy:.4f}"
    )


@dataclass(frozen=True)
class Comparison:
    deploy: bool
    reason: str
    challenger: HeadlineMetrics
    #: The champion's figures on the challenger's held-out split; None when no champion was compared.
    champion: HeadlineMetrics | None
    champion_model: str | None


def compare(
    metrics: ModelMetrics,
    *,
    serving: str | None,
    scored: str | None,
    min_accuracy: float,
    tolerance: float,
) -> Comparison:
    """Decide from one metrics.json: ``serving`` is the champion's archive now, ``scored`` the one the
    training job was given (and scored on the challenger's held-out split).

    * no champion serves: the minimum accuracy alone decides;
    * the champion serving is not the one scored (a deployment finished while the challenger trained), or the
      job wrote no champion figure: rejected, there is no figure for that champion on this split;
    * the champion could not be scored (its artifact is unreadable, or of a format or cleaning version this
      code refuses): the minimum accuracy alone decides, and the reason says so;
    * otherwise both figures on the same rows decide.
    """
    challenger = headline(metrics)
    if serving is None:
        deploy, reason = decide(challenger, None, min_accuracy=min_accuracy, tolerance=tolerance)
        return Comparison(deploy, reason, challenger, None, None)
    score = metrics.champion
    if serving != scored or score is None:
        why = (
            "a deployment changed the champion while the challenger trained"
            if serving != scored
            else f"the training job wrote no champion figure into {METRICS_FILE}"
        )
        return Comparison(
            False,
            f"not compared: {why}, so the serving champion has no figure on this test split; run again",
            challenger,
            None,
            serving,
        )
    if score.accuracy is None or score.macro_f1 is None:
        deploy, reason = decide(challenger, None, min_accuracy=min_accuracy, tolerance=tolerance)
        reason = f"the champion could not be scored on this test split ({score.error}); {reason}"
        return Comparison(deploy, reason, challenger, None, serving)
    champion = HeadlineMetrics(accuracy=score.accuracy, macro_f1=score.macro_f1)
    deploy, reason = decide(challenger, champion, min_accuracy=min_accuracy, tolerance=tolerance)
    reason += (
        f" (both on the same {score.rows}-row {score.evaluated_on} split; {score.unknown_label_rows} of its "
        "rows have labels the champion does not know and count as its errors)"
    )
    return Comparison(deploy, reason, challenger, champion, serving)


def metrics_from_model_tar(stream: IO[bytes]) -> ModelMetrics:
    """Read metrics.json out of a streamed model.tar.gz without extracting (or downloading) the rest.

    Artifacts are packed in sorted order, so metrics.json comes before the SavedModel's large files.
    """
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                if member.name.removeprefix("./") != METRICS_FILE:
                    continue
                if not member.isfile() or member.size > _MAX_METRICS_BYTES:
                    raise IncompatibleModel(
                        f"{METRICS_FILE} in the model archive is not a small regular file"
                    )
                content = tar.extractfile(member)
                if content is None:
                    break
                try:
                    return ModelMetrics.model_validate_json(content.read())
                except ValueError as exc:
                    raise IncompatibleModel(
                        f"{METRICS_FILE} does not match ModelMetrics: {type(exc).__name__}"
                    ) from exc
    except tarfile.TarError as exc:
        raise IncompatibleModel(f"model archive cannot be read: {type(exc).__name__}") from exc
    raise IncompatibleModel(f"model archive has no {METRICS_FILE}")


class EvaluateEvent(BaseModel):
    """What the state machine sends after the training job: its model archive and the champion it scored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    step: EvaluationStep
    model_artifacts: str
    training_job_name: str
    #: The champion's archive the training job was given (FindChampion's ``model_artifacts``), if any.
    champion_model: str | None = None


def run(event: EvaluateEvent, env: StepEnvironment) -> EvaluationResult:
    s3, sagemaker = env.client("s3"), env.client("sagemaker")
    step = event.step
    bucket, key = parse_s3_uri(event.model_artifacts)
    metrics = metrics_from_model_tar(s3.get_object(Bucket=bucket, Key=key)["Body"])
    endpoint, record = current_champion(step, s3=s3, sagemaker=sagemaker)
    comparison: Comparison = compare(
        metrics,
        # A roll back is the customer's choice of an earlier model: no champion stands in its way.
        serving=record.model_artifacts if record and not step.redeploy else None,
        scored=event.champion_model,
        min_accuracy=step.min_accuracy,
        tolerance=step.tolerance,
    )
    return EvaluationResult(
        deploy=comparison.deploy,
        reason=comparison.reason,
        challenger=comparison.challenger,
        champion=comparison.champion,
        champion_model=comparison.champion_model,
        min_accuracy=step.min_accuracy,
        tolerance=step.tolerance,
        endpoint=endpoint,
    )


STEP = Step(
    name="evaluate",
    schema=TypeAdapter(EvaluateEvent),
    run=run,
    buckets=lambda event: [
        event.step.bucket,
        *(parse_s3_uri(uri)[0] for uri in (event.model_artifacts, event.champion_model) if uri),
    ],
    log_keys=lambda event: run_ids(event.step),
    summary=lambda result: {
        "deploy": result.deploy,
        "challenger_accuracy": result.challenger.accuracy,
        "champion_accuracy": result.champion.accuracy if result.champion else None,
    },
)
