"""Model selection per tenant (``architecture=auto``), on the validation split only.

The candidates are the architectures that fit the data's size: ``head`` (the frozen shared encoder with a
logistic-regression head), ``linear`` (class-weighted logistic regression over TF-IDF token n-grams) and
``cnn`` always; fine-tuned ``minilm`` only from ``MINILM_MIN_TRAIN_ROWS`` training rows (below that the head
over the same encoder is close, and fine-tuning costs minutes per thousand rows on CPU). The ``candidates``
hyperparameter replaces that list (e.g. to measure ``minilm`` on a smaller set); a tenant who wants one
architecture pins it with the ``architecture`` hyperparameter.

The winner has the best validation macro-F1 — every label counts the same, so a model that ignores the
rare labels loses — and candidates within ``TIE_MACRO_F1`` of the best count as tied: then the cheaper to
serve wins (``SERVING_COST_ORDER``). Test figures are recorded for every candidate but never used to choose.
"""

from __future__ import annotations

from collections.abc import Sequence

from convclass.artifacts import CandidateFigures

#: Cheapest to serve first. A head shares the encoder every tenant's heads run on (a few hundred KB each on
#: the shared endpoint, where memory per model decides the fleet's size); the linear model and the cnn are
#: small models of their own that need no encoder pass (the linear one is a single sparse product; its
#: n-gram weights make it a few MB); minilm is a 90 MB model of its own with a transformer pass per email.
SERVING_COST_ORDER = ("head", "linear", "cnn", "minilm")
MINILM_MIN_TRAIN_ROWS = 20_000
#: Half a macro-F1 point: differences below it are within validation noise on a few hundred rows.
TIE_MACRO_F1 = 0.005


def candidate_architectures(train_rows: int, pinned: Sequence[str] | None = None) -> tuple[str, ...]:
    """``pinned`` (the ``candidates`` hyperparameter) when given, else what fits ``train_rows``."""
    if pinned:
        return tuple(sorted(pinned, key=SERVING_COST_ORDER.index))
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
