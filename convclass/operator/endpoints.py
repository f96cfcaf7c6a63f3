"""Endpoints: a tenant classifier's SageMaker endpoint, and classifying emails where the classifier is served.

The endpoint's name follows from the tenant and classifier (:func:`convclass.layout.endpoint_name`), so no
stack output names it; a missing endpoint means no run has deployed that classifier to its own endpoint. A
classifier on the shared multi-model endpoint is found through its champion record's route instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from convclass import layout
from convclass.errors import InvalidInput, UnknownTenant
from convclass.events import ChampionRecord
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

    def shared_route(self, tenant: str, classifier: str) -> tuple[str, str] | None:
        """(shared endpoint, TargetModel) when the classifier's champion record routes it to the shared
        endpoint; None when it is served by its own endpoint or nothing is deployed."""
        key = layout.ClassifierLayout(tenant, classifier).champion_key
        try:
            body = self._call("s3", "get_object", Bucket=self.outputs.require("data_bucket"), Key=key)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None
            raise
        record = ChampionRecord.model_validate_json(body.read())
        if record.hosting == "shared" and record.endpoint_name and record.target_model:
            return record.endpoint_name, record.target_model
        return None

    def classify(
        self, tenant: str, classifier: str, emails: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """Send emails in one batch where the classifier is served (the shared endpoint with its TargetModel,
        as its champion record routes it, or its own endpoint); returns one prediction per email, in order."""
        if not emails:
            raise InvalidInput("no emails to classify")
        route = self.shared_route(tenant, classifier)
        target: dict[str, str] = {}
        if route is not None:
            name, target["TargetModel"] = route
        else:
            name = self.endpoint(tenant, classifier).name
        try:
            response = self._call(
                "sagemaker-runtime",
                "invoke_endpoint",
                EndpointName=name,
                ContentType="application/json",
                Accept="application/json",
                Body=json.dumps({"emails": [dict(email) for email in emails]}).encode(),
                **target,
            )
        except ClientError as exc:
            message = exc.response.get("Error", {}).get("Message", "")
            raise OperatorError(f"endpoint {name!r} refused the request: {message}") from exc
        document = json.loads(response["Body"].read())
        predictions = document.get("predictions") if isinstance(document, dict) else None
        if not isinstance(predictions, list):
            raise OperatorError(f"endpoint {name!r} answered without predictions")
        return predictions
