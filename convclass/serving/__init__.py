"""Real-time classification of inbound emails behind SageMaker's container contract.

``create_app`` builds the FastAPI app (``/ping``, ``/invocations``) around an ``EmailClassifier``;
``create_multi_model_app`` the SageMaker multi-model contract (``/models``) around a ``ModelRegistry``;
``python -m convclass.serving serve`` runs either.
Importing this package never imports TensorFlow: only the in-process backend does, when it loads a model.
"""

from convclass.serving.app import ServingLimits, create_app, create_multi_model_app
from convclass.serving.classifier import (
    EmailClassifier,
    InboundEmail,
    SharedEncoder,
    load_classifier,
    open_artifact,
    open_encoder,
)
from convclass.serving.multimodel import ModelRegistry

__all__ = [
    "EmailClassifier",
    "InboundEmail",
    "ModelRegistry",
    "ServingLimits",
    "SharedEncoder",
    "create_app",
    "create_multi_model_app",
    "load_classifier",
    "open_artifact",
    "open_encoder",
]
