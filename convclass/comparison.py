"""Challenger vs champion: the rule that decides whether a newly trained model replaces the deployed one."""

from __future__ import annotations

import tarfile
from typing import IO

from convclass.artifacts import METRICS_FILE, ModelMetrics
from convclass.errors import IncompatibleModel
from convclass.events import HeadlineMetrics

#: metrics.json is a few KB; anything larger is not a metrics file.
_MAX_METRICS_BYTES = 4 * 1024 * 1024


def headline(metrics: ModelMetrics) -> HeadlineMetrics:
    return HeadlineMetrics(accuracy=metrics.accuracy, macro_f1=metrics.macro_f1)


def decide(
    challenger: HeadlineMetrics, champion: HeadlineMetrics | None, *, min_accuracy: float, tolerance: float
) -> tuple[bool, str]:
    """Deploy iff the challenger reaches ``min_accuracy`` and is not worse than the champion beyond
    ``tolerance``.

    Accuracy is the deciding figure (what users see); macro-F1 travels with it for the record.
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
    return True, (
        f"challenger accuracy {challenger.accuracy:.4f} is within {tolerance:.4f} of or above the champion's "
        f"{champion.accuracy:.4f}"
    )


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
