"""Evaluate Lambda, for two states: ``FindChampion`` (:mod:`convclass.steps.champion`, its event says
``"action": "find_champion"``) before training and ``Evaluate`` (:mod:`convclass.steps.evaluate`) after it,
each behind the shared adapter."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from convclass.steps import champion, evaluate
from functions.adapter import lambda_handler

_find_champion = lambda_handler(champion.STEP)
_evaluate = lambda_handler(evaluate.STEP)


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    finding = isinstance(event, dict) and event.get("action") == champion.FIND_CHAMPION
    return (_find_champion if finding else _evaluate)(event, context)
