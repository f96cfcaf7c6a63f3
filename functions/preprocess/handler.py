"""Preprocess Lambda: :mod:`convclass.steps.preprocess` behind the shared adapter. ``InvalidInput`` and
``InsufficientData`` reach Step Functions under their names, so a run ends cleanly before training is paid
for; the dataset manifest says why."""

from __future__ import annotations

from convclass.steps import preprocess
from functions.adapter import lambda_handler

handler = lambda_handler(preprocess.STEP)
