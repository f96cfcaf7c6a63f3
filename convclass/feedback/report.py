"""One classifier's feedback figures as the operator CLI (``convclass feedback``) and the console show them.

Both read the same stored rows and runs through this function: the deployed model, agreement with the
agents' final labels, drift, the rules firing now, the new labels they wait for, and the automatic runs
(executions whose business key starts with ``feedback-``) with the reason each one carries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from convclass.feedback.loop import FeedbackLoop, status_report
from convclass.feedback.policy import BUSINESS_KEY_PREFIX
from convclass.operator import Operator


def feedback_report(
    operator: Operator, tenant: str, classifier: str, now: datetime, *, read_only: bool = False
) -> dict[str, Any] | None:
    """:func:`status_report` of the window ending ``now`` plus ``automatic_runs``; None when no model of
    ``tenant/classifier`` is deployed. ``read_only`` writes nothing (the console); otherwise the deployed
    run's summary is kept for later evaluations (``FeedbackLoop.deployed``)."""
    loop = FeedbackLoop(
        s3=operator.client("s3"),
        sfn=operator.client("stepfunctions"),
        bucket=operator.outputs.require("data_bucket"),
        kms_key_arn="" if read_only else operator.outputs.require("kms_key_arn"),
        training_state_machine_arn=operator.training_state_machine,
        keep_deployed=not read_only,
    )
    found = loop.status(tenant, classifier, now)
    if found is None:
        return None
    report = status_report(found)
    report["automatic_runs"] = [
        {
            "run": run.name,
            "status": run.status,
            "started": run.started,
            "reason": operator.describe_run(run.arn).input.get("reason"),
        }
        for run in operator.runs(tenant, classifier)
        if BUSINESS_KEY_PREFIX in run.name
    ]
    return report
