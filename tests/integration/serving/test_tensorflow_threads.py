"""``set_tensorflow_threads`` against real TensorFlow, each case in a fresh process (the pools are fixed once
TensorFlow's runtime is up, and this test process may have started it already)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from serving_support import MODEL_VERSION

from convclass.artifacts import saved_model_path

SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf
from convclass.serving.backends import InProcessBackend, set_tensorflow_threads

intra = None if sys.argv[2] == "default" else int(sys.argv[2])
set_tensorflow_threads(intra, intra)
backend = InProcessBackend(__import__("pathlib").Path(sys.argv[1]))
ids = np.random.default_rng(0).integers(1, 50, size=(8, 24)).astype(np.int32)
mask = np.ones_like(ids)
mask[4:, 12:] = 0
probabilities = backend.predict(ids, mask)
try:
    set_tensorflow_threads(3)
    resized = "no error"
except ValueError as exc:
    resized = str(exc)
print(json.dumps({
    "intra": tf.config.threading.get_intra_op_parallelism_threads(),
    "inter": tf.config.threading.get_inter_op_parallelism_threads(),
    "bytes": probabilities.tobytes().hex(),
    "resized": resized,
}))
"""


def run(saved_model: Path, threads: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(saved_model), threads],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    document: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return document


def test_one_thread_per_op_gives_the_same_probabilities_and_the_pools_stay_fixed(artifact_dir: Path) -> None:
    saved_model = saved_model_path(artifact_dir, MODEL_VERSION)
    default, single = run(saved_model, "default"), run(saved_model, "1")
    assert (single["intra"], single["inter"]) == (1, 1)
    assert (default["intra"], default["inter"]) == (0, 0)  # TensorFlow's own choice
    assert single["bytes"] == default["bytes"]
    for case in (default, single):
        assert "before loading a model" in str(case["resized"])
