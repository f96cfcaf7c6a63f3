"""The champion on the challenger's test split: one held-out set for both figures the comparison uses.

The state machine gives the training job the champion's ``model.tar.gz`` as the input channel ``champion``
(SageMaker drops the object into ``<root>/input/data/champion/``). After training, the champion classifies the
same held-out rows the challenger is scored on, with its own tokenizer and sequence length through its
SavedModel's serving signature (what its endpoint runs), and its figures go into the challenger's metrics.json
(``ModelMetrics.champion``).

A ``head`` champion has no SavedModel: it is scored as the shared endpoint runs it, on the frozen encoder the
training job holds (``base_model_dir``, refused unless its weights are the ones the head names) and through
``convclass.heads`` (its token features included), so a head tenant's retraining is compared like any other.

A champion that cannot be read, or that serving would refuse (artifact format or cleaning version), is not
scored: the score says why, and the job still succeeds (the evaluate step decides what that means).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from convclass.artifacts import ChampionScore, ModelArtifact, ModelMetrics, extract_model_tar, load_artifact
from convclass.errors import ConvclassError, IncompatibleModel

if TYPE_CHECKING:
    from convclass.training.data import TrainingData

logger = logging.getLogger("convclass.training")

#: InputDataConfig channel that carries the champion's model.tar.gz.
CHAMPION_CHANNEL = "champion"
CHAMPION_ARCHIVE = "model.tar.gz"
#: Rows per SavedModel call while scoring the champion (bounds memory on large test splits).
SCORING_BATCH = 256


def champion_archive(input_data: Path) -> Path | None:
    """The champion's model archive in its channel, or None when the job was given no champion."""
    channel = input_data / CHAMPION_CHANNEL
    if not channel.is_dir():
        return None
    # SageMaker names the file after the object's key: model.tar.gz. Anything else (an empty channel, several
    # files) is read as that missing file, so the champion is reported as not scored instead of guessed at.
    files = [p for p in channel.iterdir() if p.is_file()]
    return files[0] if len(files) == 1 else channel / CHAMPION_ARCHIVE


def score_predictions(
    predicted: Sequence[str],
    truth: Sequence[str],
    champion_labels: Sequence[str],
    evaluated_on: Literal["test", "validation"],
) -> ChampionScore:
    """Figures of the champion's predicted label names against the held-out truth (compared by name)."""
    from sklearn.metrics import f1_score

    if len(predicted) != len(truth):
        raise ValueError("one prediction per held-out row is needed")
    known = set(champion_labels)
    y_true = np.array(truth, dtype=object)
    y_pred = np.array(predicted, dtype=object)
    return ChampionScore(
        evaluated_on=evaluated_on,
        rows=len(truth),
        unknown_label_rows=sum(1 for label in truth if label not in known),
        accuracy=float((y_pred == y_true).mean()) if len(truth) else 0.0,
        macro_f1=float(f1_score(y_true, y_pred, average="macro", zero_division=0)) if len(truth) else 0.0,
    )


def with_champion_score(
    metrics: ModelMetrics, champion: Path | None, data: TrainingData, *, base_model_dir: Path | None = None
) -> ModelMetrics:
    """``metrics`` with the deployed ``champion`` scored on the challenger's held-out split (``champion``)."""
    if champion is None:
        return metrics
    held_out = data.held_out
    score = score_champion(
        champion,
        held_out.texts,
        held_out.labels,
        cleaning_version=data.cleaning_version,
        evaluated_on=data.evaluated_on,
        base_model_dir=base_model_dir,
    )
    return metrics.model_copy(update={"champion": score})


def score_champion(
    archive: Path,
    texts: Sequence[str],
    truth: Sequence[str],
    *,
    cleaning_version: str,
    evaluated_on: Literal["test", "validation"],
    base_model_dir: Path | None = None,
) -> ChampionScore:
    """Run the champion in ``archive`` over the held-out ``texts`` and score it against ``truth``.

    ``base_model_dir``: the frozen encoder a ``head`` champion runs on (without it a head is not scored).
    """
    from convclass.tokenization import encode_texts, load_tokenizer
    from convclass.training.export import serving_function

    with tempfile.TemporaryDirectory(prefix="champion-") as workdir:
        try:
            artifact = load_artifact(
                extract_model_tar(archive, Path(workdir)), cleaning_version=cleaning_version
            )
            if artifact.info.is_head:
                predicted = _head_predictions(artifact, texts, base_model_dir)
            else:
                tokenizer = load_tokenizer(artifact.tokenizer_path)
                classify = serving_function(artifact.saved_model_dir)
                predicted = []
                for start in range(0, len(texts), SCORING_BATCH):
                    batch = list(texts[start : start + SCORING_BATCH])
                    encoded = encode_texts(
                        tokenizer, batch, artifact.info.max_length, artifact.info.truncation
                    )
                    predicted.extend(artifact.labels[i] for i in classify(encoded).argmax(axis=1))
        except ConvclassError as exc:
            return _not_scored(f"{type(exc).__name__}: {exc}", len(truth), evaluated_on)
        except Exception as exc:  # a SavedModel TensorFlow cannot run: library messages may quote inputs
            reason = f"the champion's model cannot run: {type(exc).__name__}"
            return _not_scored(reason, len(truth), evaluated_on)
    score = score_predictions(predicted, truth, artifact.labels, evaluated_on)
    logger.info(
        "champion on the same %s split: accuracy %.4f, macro-F1 %.4f (%d of %d rows: labels it lacks)",
        evaluated_on,
        score.accuracy,
        score.macro_f1,
        score.unknown_label_rows,
        score.rows,
    )
    return score


def _head_predictions(
    artifact: ModelArtifact, texts: Sequence[str], base_model_dir: Path | None
) -> list[str]:
    """A head champion's labels: the encoder's embeddings (cached like training's) and ``convclass.heads``."""
    from convclass.heads import head_probabilities, read_head
    from convclass.tokenization import encode_texts, load_base_tokenizer
    from convclass.training.head import EmbeddingSource, encoder_ref

    wanted = artifact.info.encoder
    if wanted is None or base_model_dir is None:
        raise IncompatibleModel("a head champion needs the shared encoder, and this job has none")
    ref = encoder_ref(base_model_dir, wanted.name)
    if not wanted.same_weights(ref):
        raise IncompatibleModel(
            f"the head champion was trained on encoder {wanted.digest[:12]}, this job holds {ref.digest[:12]}"
        )
    info = artifact.info
    if info.token_features is not None:
        vocabulary = load_base_tokenizer(base_model_dir).get_vocab_size()
        if info.token_features.vocab_size != vocabulary:
            raise IncompatibleModel(
                f"the head champion's token features read {info.token_features.vocab_size} token ids, "
                f"the encoder tokenizer has {vocabulary}"
            )
    head = read_head(
        artifact.head_path,
        dim=wanted.dim,
        n_labels=info.n_labels,
        token_features=info.token_features,
        hidden_layer=info.hidden_layer,
    )
    embeddings = EmbeddingSource(base_model_dir, ref, info.max_length, info.truncation)(texts)
    encoded = encode_texts(load_base_tokenizer(base_model_dir), list(texts), info.max_length, info.truncation)
    probabilities = head_probabilities(head, embeddings, encoded["input_ids"], encoded["attention_mask"])
    return [artifact.labels[i] for i in probabilities.argmax(axis=1)]


def _not_scored(reason: str, rows: int, evaluated_on: Literal["test", "validation"]) -> ChampionScore:
    logger.warning("champion not scored: %s", reason)
    return ChampionScore(evaluated_on=evaluated_on, rows=rows, unknown_label_rows=0, error=reason[:1024])
