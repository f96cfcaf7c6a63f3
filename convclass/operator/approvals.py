"""Approvals: answer the gate a run waits at, and record a tenant's consent to train on its conversations.

A gate is a callback task whose token the run's history carries, so answering needs the run's description
(hence built on :class:`~convclass.operator.runs.Runs`); the run records an export gate's answer itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from convclass import layout
from convclass.errors import ApprovalRejected
from convclass.operator.clients import OperatorError, credentials
from convclass.operator.runs import Runs


class NoPendingApproval(OperatorError):
    """The execution is not waiting at an approval gate."""


class Approvals(Runs):
    """Approval gates of training runs and the tenant consent the export gate reads."""

    def answer_pending(self, name_or_arn: str, *, approve: bool, approver: str, reason: str = "") -> str:
        """Answer the gate a run waits at; returns the gate's name (``export`` or ``deployment``).

        The run itself records an export gate's answer as the tenant's consent or refusal (whoever answered
        the token, this CLI or another tool), so nothing is written here.
        """
        detail = self.describe_run(name_or_arn)
        if detail.summary.status != "RUNNING" or not detail.pending_token:
            raise NoPendingApproval(
                f"run {detail.summary.name!r} is {detail.summary.status} and not waiting for an approval"
            )
        gate = str((detail.pending_request or {}).get("gate", ""))
        self.answer(detail.pending_token, approve=approve, reason=reason, approver=approver)
        return gate

    def record_consent(
        self, tenant: str, classifier: str, label_field: str | None, *, approver: str, revoke: bool = False
    ) -> str:
        """Record (or revoke) the tenant's approval to train on its conversations; returns the key."""
        from convclass.export.consent import ConsentRecord, record_consent

        now = datetime.now(UTC)
        record = ConsentRecord(
            approved=not revoke,
            approved_by=approver or "operator",
            approved_at=now,
            label_fields=[label_field] if label_field else None,
            revoked_at=now if revoke else None,
        )
        where = layout.ClassifierLayout(tenant, classifier)
        with credentials():
            return record_consent(
                self.client("s3"),
                self.outputs.require("data_bucket"),
                where,
                record,
                kms_key_arn=self.outputs.kms_key_arn,
            )

    def answer(self, token: str, *, approve: bool, reason: str = "", approver: str = "") -> None:
        """Answer an approval gate: approval resumes the run, rejection fails it as ``ApprovalRejected``.

        The answer carries the approver and reason; at the export gate the run records them with the tenant's
        consent (approval) or refusal (rejection)."""
        try:
            if approve:
                self._call(
                    "stepfunctions",
                    "send_task_success",
                    taskToken=token,
                    output=json.dumps({"approved": True, "approver": approver, "reason": reason}),
                )
            else:
                self._call(
                    "stepfunctions",
                    "send_task_failure",
                    taskToken=token,
                    error=ApprovalRejected.__name__,
                    cause=json.dumps({"approved": False, "approver": approver, "reason": reason}),
                )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in {"TaskDoesNotExist", "InvalidToken", "TaskTimedOut"}:
                raise NoPendingApproval(f"the approval token is not (or no longer) valid: {code}") from exc
            raise
