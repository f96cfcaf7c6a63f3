"""S3 keys of models published to the shared multi-model endpoint.

A multi-model endpoint's SageMaker model points at one S3 prefix (``ModelDataUrl``); callers pick a model with
``TargetModel``, the key relative to that prefix. Every approved run is published under its own key, never
overwritten, so the route a classifier's champion records (endpoint + target model) always names the exact
bytes that were approved, and a rollback is a route change, not a copy::

    shared-models/{tenant}/{classifier}/{run}/model.tar.gz

Tenant and classifier ids cannot contain ``/`` (``convclass.layout.ID_PATTERN``), so the path segments keep
every (tenant, classifier) pair apart: ``("a-b", "c")`` and ``("a", "b-c")`` never share a key.
"""

from __future__ import annotations

from convclass.layout import validate_id, validate_run_id

SHARED_MODELS_PREFIX = "shared-models/"
MODEL_ARCHIVE = "model.tar.gz"


def target_model(tenant: str, classifier: str, run: str) -> str:
    """``TargetModel`` of one run's model: its key relative to ``SHARED_MODELS_PREFIX``."""
    validate_id(tenant, "tenant id")
    validate_id(classifier, "classifier id")
    validate_run_id(run)
    return f"{tenant}/{classifier}/{run}/{MODEL_ARCHIVE}"


def shared_model_key(tenant: str, classifier: str, run: str) -> str:
    """Bucket key of one run's model on the shared endpoint (immutable: one key per run)."""
    return SHARED_MODELS_PREFIX + target_model(tenant, classifier, run)


def shared_classifier_prefix(tenant: str, classifier: str) -> str:
    """Prefix holding every published run of one classifier (scope for per-classifier IAM grants)."""
    validate_id(tenant, "tenant id")
    validate_id(classifier, "classifier id")
    return f"{SHARED_MODELS_PREFIX}{tenant}/{classifier}/"
