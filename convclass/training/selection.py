"""Model selection per tenant (``architecture=auto``), on the validation split only.

The candidates are the architectures that fit the data's size: ``head`` (the frozen shared encoder with a
logistic-regression head) and ``cnn`` always; fine-tuned ``minilm`` only from ``MINILM_MIN_TRAIN_ROWS``
training rows (below that the head over the same encoder is as good, and fine-tuning costs minutes per
thousand rows on CPU). A tenant who wants one architecture pins it with the ``architecture`` hyperparameter.

The winner has the best validation macro-F1 — every label counts the same, so a model that ignores the
rare labels loses — and candidates within ``TIE_MACRO_F1`` of the best count as tied: then the cheaper to
serve wins (``SERVING_COST_ORDER``). Test figures are recorded for every candidate but never used to choose.
"""

from __future__ import annotations

from collections.abc import Sequence

from convclass.artifacts import CandidateFigures

#: Cheapest to serve first: a head shares the encoder every tenant's heads run on (a few hundred KB each),
#: the cnn is a small model of its own, minilm a 90 MB model of its own.
SERVING_COST_ORDER = ("head", "cnn", "minilm")
MINILM_MIN_TRAIN_ROWS = 20_000
#: Half a macro-F1 point: differences below it are within validation noise on a few hundred rows.
TIE_MACRO_F1 = 0.005


def candidate_architectures(train_rows: int) -> tuple[str, ...]:
    if train_rows >= MINILM_MIN_TRAIN_ROWS:
        return SERVING_COST_ORDER
    return tuple(a for a in SERVING_COST_ORDER if a != "minilm")


def select(candidates: Sequence[CandidateFigures]) -> str:
    """The architecture to keep: best validation macro-F1, ties (within ``TIE_MACRO_F1``) to the cheaper."""
    if not candidates:
        raise ValueError("no candidates to select from")
    best = max(c.validation_macro_f1 for c in candidates)
    tied = [c.architecture for c in candidates if c.validation_macro_f1 >= best - TIE_MACRO_F1]
    return min(tied, key=SERVING_COST_ORDER.index)
