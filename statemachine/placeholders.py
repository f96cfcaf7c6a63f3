"""Placeholder resources: what ``make asl`` renders with, and the static checks validate."""

from __future__ import annotations

from statemachine.resources import InferenceResources, TrainingPipelineResources

ACCOUNT = "123456789012"
REGION = "eu-west-1"


def _function(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:convclass-{name}"


def training_resources() -> TrainingPipelineResources:
    return TrainingPipelineResources(
        plan_function_arn=_function("plan"),
        export_function_arn=_function("export"),
        preprocess_function_arn=_function("preprocess"),
        evaluate_function_arn=_function("evaluate"),
        data_bucket=f"convclass-data-{ACCOUNT}",
        kms_key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/00000000-0000-4000-8000-000000000000",
        sagemaker_role_arn=f"arn:aws:iam::{ACCOUNT}:role/convclass-sagemaker",
        training_image_uri=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/convclass-train@sha256:{'0' * 64}",
        serving_image_uri=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/convclass-serve@sha256:{'0' * 64}",
        event_bus_name="convclass",
        shared_endpoint_name="convclass-shared-endpoint",
    )


def inference_resources() -> InferenceResources:
    return InferenceResources(
        event_bus_name="convclass",
        data_bucket=f"convclass-data-{ACCOUNT}",
        shared_endpoint_name="convclass-shared-endpoint",
    )
