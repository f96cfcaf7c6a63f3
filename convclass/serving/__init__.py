"""Real-time classification of inbound emails behind SageMaker's container contract.

``create_app`` builds the FastAPI app (``/ping``, ``/invocations``) around an ``EmailClassifier``;
``python -m convclass.serving serve`` runs it.
Importing this package never imports TensorFlow: only the in-process backend does, when it loads a model.
"""

from convclass.serving.app import ServingLimits, create_app
from convclass.serving.classifier import EmailClassifier, InboundEmail, load_classifier, open_artifact

__all__ = [
    "EmailClassifier",
    "InboundEmail",
    "ServingLimits",
    "create_app",
    "load_classifier",
    "open_artifact",
]
