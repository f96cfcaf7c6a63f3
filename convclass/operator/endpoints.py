"""Endpoints: a tenant classifier's SageMaker endpoint, and classifying emails through it.

The endpoint's name follows from the tenant and classifier (:func:`convclass.layout.endpoint_name`), so no
stack output names it; a missing endpoint means no run has deployed that classifier yet.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from convclass import layout
from convclass.errors import InvalidInput, UnknownTenant
from convclass.operator.clients import OperatorError, StackClients


@dataclass(frozen=True)
class EndpointInfo:
    name: str
    status: str
    config_name: str | None
    failure_reason: str | None


class Endpoints(StackClients):
    """The deployed classifiers' endpoints."""

    def endpoint(self, tenant: str, classifier: str) -> EndpointInfo:
        name = layout.endpoint_name(tenant, classifier)
        try:
            described = self._call("sagemaker", "describe_endpoint", EndpointName=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"ValidationException", "ResourceNotFound"}:
                raise UnknownTenant(
                    f"no endpoint for tenant {tenant!r} classifier {classifier!r} (expected {name!r}); "
                    "has a training run deployed it?"
                ) from exc
            raise
        return EndpointInfo(
            name=name,
            status=str(described.get("EndpointStatus", "")),
            config_name=described.get("EndpointConfigName"),
            failure_reason=described.get("FailureReason"),
        )

    def classify(
        self, tenant: str, classifier: str, emails: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """Send emails to the tenant's endpoint in one batch; returns one prediction per email, in order."""
        if not emails:
            raise InvalidInput("no emails to classify")
        info = self.endpoint(tenant, classifier)
        try:
            response = self._call(
                "sagemaker-runtime",
                "invoke_endpoint",
                EndpointName=info.name,
                ContentType="application/json",
                Accept="application/json",
                Body=json.dumps({"emails": [dict(email) for email in emails]}).encode(),
            )
        except ClientError as exc:
            message = exc.response.get("Error", {}).get("Message", "")
            raise OperatorError(f"endpoint {info.name!r} refused the request: {message}") from exc
        document = json.loads(response["Body"].read())
        predictions = document.get("predictions") if isinstance(document, dict) else None
        if not isinstance(predictions, list):
            raise OperatorError(f"endpoint {info.name!r} answered without predictions")
        return predictions
