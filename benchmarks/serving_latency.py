"""Single-email latency of a trained artifact through the serving code, in serving processes of its own.

    python benchmarks/serving_latency.py MODEL_DIR --texts EMAILS.json [--encoder-dir DIR]
                                         [--tf-intra-op-threads N] [--tf-inter-op-threads N]

runs one worker: it sets TensorFlow's thread pools as ``python -m convclass.serving serve`` does
(``set_tensorflow_threads``), loads the artifact the way the server does (a ``head`` on the shared encoder
``--encoder-dir`` with ``open_encoder``/``load_head``, any other model with ``load_classifier``), warms it up,
prints ``{"ready": ...}`` and then, for every ``START STOP`` line read on stdin, classifies
``emails[START:STOP]`` one email per ``EmailClassifier.classify`` call (cleaned and encoded like a request's)
and prints one JSON line: each call's milliseconds and top label. ``EMAILS.json`` is a list of texts (each a
``text/plain`` body) or of ``{"body", "subject", "content_type"}`` objects.

``interleaved_latency`` (what ``bench_train.py`` calls) keeps one worker per thread setting alive and
alternates slices of the same emails between them, so every setting sees the same load from whatever else
runs on the machine. A worker is a fresh process, as a server is: TensorFlow's thread pools are fixed once
its runtime is up, and a training run in the calling process would have started it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

#: Emails each worker classifies (untimed) after the serving warm-up, before any slice is timed.
WARM_UP_EMAILS = 20


def percentile(samples: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples, dtype=np.float64), q))


def parse_threads(setting: str) -> int | None:
    """``default`` (TensorFlow's own choice: one thread per core) or a positive count."""
    if setting == "default":
        return None
    count = int(setting)
    if count < 1:
        raise ValueError(f"thread count must be at least 1 or 'default', not {setting!r}")
    return count


class Worker:
    """One serving process (``python benchmarks/serving_latency.py``), driven over stdin/stdout."""

    def __init__(
        self,
        model_dir: Path,
        texts_file: Path,
        *,
        encoder_dir: Path | None,
        intra_op: int | None,
        inter_op: int | None = None,
    ):
        command = [sys.executable, str(Path(__file__).resolve()), str(model_dir), "--texts", str(texts_file)]
        if encoder_dir is not None:
            command += ["--encoder-dir", str(encoder_dir)]
        if intra_op is not None:
            command += ["--tf-intra-op-threads", str(intra_op)]
        if inter_op is not None:
            command += ["--tf-inter-op-threads", str(inter_op)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.ready = self._read()

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            code = self._process.wait(timeout=60)
            raise RuntimeError(f"serving worker exited with {code} (run it by hand to see why)")
        document: dict[str, Any] = json.loads(line)
        return document

    def measure(self, start: int, stop: int) -> tuple[list[float], list[str]]:
        assert self._process.stdin is not None
        self._process.stdin.write(f"{start} {stop}\n")
        self._process.stdin.flush()
        answer = self._read()
        return answer["ms"], answer["labels"]

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def interleaved_latency(
    model_dir: Path,
    texts: Sequence[str | dict[str, str | None]],
    *,
    encoder_dir: Path | None,
    settings: Sequence[int | None],
    workdir: Path,
    rounds: int = 10,
) -> list[dict[str, Any]]:
    """Per thread setting: ``ms`` (one per email, in order), ``labels`` (top label) and the worker's load
    seconds. Slices of ``texts`` alternate between the settings (order reversed every round)."""
    texts_file = workdir / "serving-texts.json"
    texts_file.write_text(json.dumps(list(texts)))
    workers: list[Worker] = []
    try:
        for setting in settings:
            workers.append(Worker(model_dir, texts_file, encoder_dir=encoder_dir, intra_op=setting))
        results: list[dict[str, Any]] = [
            {"ms": [], "labels": [], "load_seconds": w.ready["load_seconds"]} for w in workers
        ]
        size = max(1, -(-len(texts) // max(1, rounds)))
        for index, start in enumerate(range(0, len(texts), size)):
            order = list(range(len(workers)))
            for position in order if index % 2 == 0 else order[::-1]:
                ms, labels = workers[position].measure(start, min(start + size, len(texts)))
                results[position]["ms"].extend(ms)
                results[position]["labels"].extend(labels)
        return results
    finally:
        for worker in workers:
            worker.close()


def _load(model_dir: Path, encoder_dir: Path | None) -> Any:
    from convclass.serving import load_classifier, open_artifact, open_encoder
    from convclass.serving.classifier import load_head

    artifact = open_artifact(model_dir)
    if artifact.info.is_head:
        if encoder_dir is None:
            raise SystemExit("a head model needs the shared encoder: pass --encoder-dir")
        classifier = load_head(artifact, open_encoder(encoder_dir))
        classifier.warm_up()
        return classifier
    return load_classifier(artifact)


def _serve(model_dir: Path, encoder_dir: Path | None, texts: list[Any], commands: IO[str]) -> None:
    from convclass.serving import InboundEmail

    started = time.monotonic()
    classifier = _load(model_dir, encoder_dir)
    emails = [
        InboundEmail(body=text, content_type="text/plain")
        if isinstance(text, str)
        else InboundEmail(
            body=text["body"], subject=text.get("subject"), content_type=text.get("content_type", "text/html")
        )
        for text in texts
    ]
    for email in emails[:WARM_UP_EMAILS]:
        classifier.classify([email])
    print(json.dumps({"ready": True, "load_seconds": time.monotonic() - started}), flush=True)
    for line in commands:
        start, stop = (int(part) for part in line.split())
        ms, labels = [], []
        for email in emails[start:stop]:
            began = time.perf_counter()
            prediction = classifier.classify([email])[0]
            ms.append((time.perf_counter() - began) * 1000)
            labels.append(prediction.labels[0].label)
        print(json.dumps({"ms": ms, "labels": labels}), flush=True)
    classifier.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model_dir", type=Path, help="an extracted artifact (artifact.json, …)")
    parser.add_argument("--texts", type=Path, required=True, help="JSON list of texts or email objects")
    parser.add_argument("--encoder-dir", type=Path, help="the shared encoder a head runs on")
    parser.add_argument("--tf-intra-op-threads", type=int)
    parser.add_argument("--tf-inter-op-threads", type=int)
    args = parser.parse_args()

    from convclass.serving.backends import set_tensorflow_threads

    set_tensorflow_threads(args.tf_intra_op_threads, args.tf_inter_op_threads)
    _serve(args.model_dir, args.encoder_dir, json.loads(args.texts.read_text()), sys.stdin)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
