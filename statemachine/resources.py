"""What a rendering of the workflows needs to know about the deployed world.

The Pulumi program fills these from real resource outputs, the embedded local run from its moto resources, and
the tests from placeholders; the rendering itself is a pure function of them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainingPipelineResources:
    """ARNs and names the training → deployment pipeline (Standard workflow) refers to."""

    plan_function_arn: str
    export_function_arn: str
    preprocess_function_arn: str
    evaluate_function_arn: str
    data_bucket: str
    kms_key_arn: str
    sagemaker_role_arn: str
    training_image_uri: str
    serving_image_uri: str
    event_bus_name: str
    #: The stack's shared multi-model endpoint; None: the stack has none, so a ``shared`` run is refused.
    shared_endpoint_name: str | None = None


@dataclass(frozen=True)
class InferenceResources:
    """Names the inference workflow (Express) refers to; endpoints are derived from
    tenant/classifier per email, or read from the classifier's champion record (shared hosting)."""

    event_bus_name: str
    #: Holds each classifier's champion.json, the route of a ``shared`` classifier.
    data_bucket: str
    #: The stack's shared multi-model endpoint; None: no classifier is shared, no route is read.
    shared_endpoint_name: str | None = None
