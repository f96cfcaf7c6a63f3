"""SavedModel export with the serving signature of convclass.artifacts, loadable by TF Serving.

The SavedModel holds only TensorFlow graphs and variables: serving needs neither Keras nor convclass for it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from convclass.artifacts import ATTENTION_MASK, INPUT_IDS, OUTPUT_NAME, SIGNATURE_NAME


def export_saved_model(model: keras.Model, path: Path) -> Path:
    """Write ``model`` with the ``serving_default`` signature (length axis open, see convclass.artifacts)."""
    # No archive.track(model): the endpoint already captures the variables it uses; tracking the model too
    # stores every weight twice (Keras 3.15 saves both lists), doubling the artifact.
    archive = keras.export.ExportArchive()

    def serve(input_ids: Any, attention_mask: Any) -> dict[str, Any]:
        probabilities = model({INPUT_IDS: input_ids, ATTENTION_MASK: attention_mask}, training=False)
        return {OUTPUT_NAME: tf.cast(probabilities, tf.float32)}

    archive.add_endpoint(
        name=SIGNATURE_NAME,
        fn=serve,
        input_signature=[
            tf.TensorSpec([None, None], tf.int32, name=INPUT_IDS),
            tf.TensorSpec([None, None], tf.int32, name=ATTENTION_MASK),
        ],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    archive.write_out(str(path), verbose=False)
    return path


def serving_function(path: Path) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """Load a SavedModel once; the result runs inputs through its serving signature, as TF Serving would."""
    signature = tf.saved_model.load(str(path)).signatures[SIGNATURE_NAME]

    def probabilities(inputs: dict[str, np.ndarray]) -> np.ndarray:
        outputs = signature(
            **{name: tf.constant(inputs[name], dtype=tf.int32) for name in (INPUT_IDS, ATTENTION_MASK)}
        )
        return np.asarray(outputs[OUTPUT_NAME])

    return probabilities


def saved_model_probabilities(path: Path, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Run the exported model through its serving signature, exactly as TF Serving would."""
    return serving_function(path)(inputs)
