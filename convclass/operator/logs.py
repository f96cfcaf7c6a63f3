"""Logs: a training job's log lines, read from CloudWatch Logs where SageMaker writes them.

SageMaker names a job's streams ``<job>/...`` in one log group, so the job's name is all it takes.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from convclass import layout
from convclass.operator.clients import OperatorError, StackClients


class Logs(StackClients):
    """Training jobs' logs."""

    def training_log(self, job: str, limit: int = 10_000) -> list[str]:
        """The training job's log lines (CloudWatch Logs, as SageMaker writes them)."""
        logs = self.client("logs")
        lines: list[str] = []
        try:
            streams = self._call(
                "logs",
                "describe_log_streams",
                logGroupName=layout.TRAINING_LOG_GROUP,
                logStreamNamePrefix=f"{job}/",
            )["logStreams"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise OperatorError(f"no logs for training job {job!r}") from exc
            raise
        if not streams:
            raise OperatorError(f"no logs for training job {job!r}")
        for stream in streams:
            kwargs: dict[str, Any] = {
                "logGroupName": layout.TRAINING_LOG_GROUP,
                "logStreamName": stream["logStreamName"],
                "startFromHead": True,
            }
            while len(lines) < limit:
                page = logs.get_log_events(**kwargs)
                lines.extend(event["message"] for event in page.get("events", []))
                token = page.get("nextForwardToken")
                if not page.get("events") or token == kwargs.get("nextToken"):
                    break
                kwargs["nextToken"] = token
        return lines[:limit]
