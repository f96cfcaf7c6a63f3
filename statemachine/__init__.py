"""The convclass workflows as Python: pure functions that render Amazon States Language.

The Pulumi program, the embedded local run and the tests all call these with the names/ARNs of their world;
there is no hand-maintained JSON. Nothing here imports Pulumi or boto3.
"""

from statemachine.inference import render_inference_workflow
from statemachine.resources import InferenceResources, TrainingPipelineResources
from statemachine.training import PipelineSettings, render_training_pipeline

__all__ = [
    "InferenceResources",
    "PipelineSettings",
    "TrainingPipelineResources",
    "render_inference_workflow",
    "render_training_pipeline",
]
