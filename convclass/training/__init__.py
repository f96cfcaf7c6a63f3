"""Training of a tenant's classifier, following SageMaker's training-container contract.

``python -m convclass.training train [--root /opt/ml]`` is the image's ``train`` command. Importing this
package is cheap (no TensorFlow), so the state machine and infrastructure take ``metric_definitions()`` from
here.
"""

from convclass.training.config import TrainingConfig, parse_hyperparameters
from convclass.training.data import CHANNEL_FILES
from convclass.training.logs import metric_definitions

__all__ = ["CHANNEL_FILES", "TrainingConfig", "metric_definitions", "parse_hyperparameters"]
