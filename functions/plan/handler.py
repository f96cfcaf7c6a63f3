"""Plan Lambda (``ValidateInput``): :mod:`convclass.steps.plan` behind the shared adapter."""

from __future__ import annotations

from convclass.steps import plan
from functions.adapter import lambda_handler

handler = lambda_handler(plan.STEP)
