"""A tiny model artifact that honours convclass.artifacts, and a fake TF Serving speaking its REST protocol.

The model is a masked mean of per-token label logits followed by softmax: small enough to build in a second,
yet a real SavedModel with the ``serving_default`` signature, so TensorFlow treats it like a trained one.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from convclass.artifacts import (
    ARTIFACT_FILE,
    LABELS_FILE,
    OUTPUT_NAME,
    ArtifactInfo,
    LabelMap,
    saved_model_path,
    write_json_model,
)
from convclass.cleaning import CLEANING_VERSION, clean_email
from convclass.tokenization import save_tokenizer, train_tokenizer
from convclass_local.generator import generate_emails, template_labels

MAX_LENGTH = 32
MODEL_VERSION = 3


def build_artifact(root: Path, *, cleaning_version: str = CLEANING_VERSION, seed: int = 0) -> np.ndarray:
    """Write a complete artifact directory under ``root``; return the logit table [vocab, n_labels]."""
    import tensorflow as tf

    emails = generate_emails(80, seed=seed)
    texts = [clean_email(e["subject"], e["body"], e["body_content_type"]).text for e in emails]
    tokenizer = train_tokenizer(texts, vocab_size=400, min_frequency=1)
    save_tokenizer(tokenizer, root)
    labels = template_labels()
    table = (
        np.random.default_rng(seed).normal(size=(tokenizer.get_vocab_size(), len(labels))).astype(np.float32)
    )

    class MeanLogits(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.table = tf.Variable(table)

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, MAX_LENGTH], tf.int32, name="input_ids"),
                tf.TensorSpec([None, MAX_LENGTH], tf.int32, name="attention_mask"),
            ]
        )
        def serve(self, input_ids: Any, attention_mask: Any) -> dict[str, Any]:
            mask = tf.cast(attention_mask, tf.float32)[..., None]
            logits = tf.reduce_sum(tf.gather(self.table, input_ids) * mask, axis=1) / tf.reduce_sum(
                mask, axis=1
            )
            return {OUTPUT_NAME: tf.nn.softmax(logits)}

    module = MeanLogits()
    tf.saved_model.save(
        module, str(saved_model_path(root, MODEL_VERSION)), signatures={"serving_default": module.serve}
    )
    write_json_model(root / LABELS_FILE, LabelMap(labels=labels))
    info = ArtifactInfo(
        model_version=MODEL_VERSION,
        architecture="mean-logits-test",
        max_length=MAX_LENGTH,
        n_labels=len(labels),
        cleaning_version=cleaning_version,
    )
    write_json_model(root / ARTIFACT_FILE, info)
    return table


def expected_probabilities(
    table: np.ndarray, input_ids: np.ndarray, attention_mask: np.ndarray
) -> np.ndarray:
    """The tiny model's output computed independently in numpy."""
    mask = attention_mask[..., None].astype(np.float64)
    logits = (table[input_ids].astype(np.float64) * mask).sum(axis=1) / mask.sum(axis=1)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


_PATH_RE = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<verb>:predict)?$")


@dataclass
class Servable:
    """One model version a fake TF Serving holds: its state and the function that answers predict."""

    version: int
    predict: Callable[[np.ndarray, np.ndarray], np.ndarray] | None
    state: str = "AVAILABLE"


@dataclass
class FakeTFServing:
    """``tensorflow_model_server``'s REST API as far as convclass uses it: model status and columnar predict.

    Answers as TF Serving does: 404 with ``{"error": ...}`` for an unknown model or version, 400 for a
    malformed predict body, ``{"outputs": [[...]]}`` for a one-output signature. ``model_name`` is the model
    given on the command line; ``servables`` the ones a model config file added (``ConfigFileLoader``).
    """

    predict: Callable[[np.ndarray, np.ndarray], np.ndarray] | None
    model_name: str = "model"
    version: int = MODEL_VERSION
    port: int = 0
    state: str = "AVAILABLE"
    fail_with: int | None = None
    garbage: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    servables: dict[str, Servable] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def servable(self, name: str) -> Servable | None:
        if name == self.model_name:
            return Servable(self.version, self.predict, self.state)
        return self.servables.get(name)

    def start(self) -> FakeTFServing:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, document: object) -> None:
                body = json.dumps(document).encode() if not isinstance(document, bytes) else document
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _route(self) -> tuple[Servable, bool] | None:
                match = _PATH_RE.match(self.path)
                servable = fake.servable(match["name"]) if match else None
                if match is None or servable is None:
                    self._send(404, {"error": f"Servable not found for request: {self.path}"})
                    return None
                if match["version"] is not None and int(match["version"]) != servable.version:
                    self._send(
                        404, {"error": f"Servable not found for request: Specific({match['version']})"}
                    )
                    return None
                return servable, match["verb"] is not None

            def do_GET(self) -> None:
                route = self._route()
                if route is None:
                    return
                servable, _ = route
                status = {"error_code": "OK", "error_message": ""}
                versions = [{"version": str(servable.version), "state": servable.state, "status": status}]
                self._send(200, {"model_version_status": versions})

            def do_POST(self) -> None:
                route = self._route()
                if route is None:
                    return
                servable, _ = route
                length = int(self.headers.get("Content-Length", "0"))
                try:
                    request = json.loads(self.rfile.read(length))
                    fake.requests.append(request)
                    if request.get("signature_name", "serving_default") != "serving_default":
                        raise KeyError("signature")
                    inputs = request["inputs"]
                    ids = np.asarray(inputs["input_ids"], dtype=np.int32)
                    mask = np.asarray(inputs["attention_mask"], dtype=np.int32)
                except (ValueError, KeyError, TypeError):
                    self._send(400, {"error": "JSON Value: ... Is not an object or has no inputs"})
                    return
                if servable.state != "AVAILABLE" or servable.predict is None:
                    self._send(503, {"error": "Servable not found for request: Latest(model)"})
                elif fake.fail_with is not None:
                    self._send(fake.fail_with, {"error": "Internal: kernel failure at /models/model/3"})
                elif fake.garbage:
                    self._send(200, b"<html>proxy error</html>")
                else:
                    self._send(200, {"outputs": servable.predict(ids, mask).tolist()})

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


_CONFIG_RE = re.compile(r"config\s*\{(?P<body>(?:[^{}]|\{[^{}]*\{[^{}]*\}[^{}]*\})*)\}")
_STRING_FIELD = r'\b{}:\s*(?P<value>"(?:[^"\\]|\\.)*")'


def parse_model_config(text: str) -> dict[str, tuple[Path, int | None]]:
    """name → (base_path, pinned version) of a ``ModelServerConfig`` text file, as TF Serving reads it.

    Written independently of ``convclass.serving.tfserving`` (regular expressions over the text format), so a
    file that this does not read as intended fails the tests rather than passing through the same code.
    """
    body = text.strip()
    if not (body.startswith("model_config_list") and body.endswith("}")):
        raise ValueError("not a model_config_list")
    models: dict[str, tuple[Path, int | None]] = {}
    for entry in _CONFIG_RE.finditer(body):
        fields = entry["body"]
        name = re.search(_STRING_FIELD.format("name"), fields)
        base = re.search(_STRING_FIELD.format("base_path"), fields)
        platform = re.search(_STRING_FIELD.format("model_platform"), fields)
        if name is None or base is None or platform is None or json.loads(platform["value"]) != "tensorflow":
            raise ValueError(f"incomplete config entry: {fields!r}")
        pinned = re.search(r"specific\s*\{\s*versions:\s*(\d+)\s*\}", fields)
        models[json.loads(name["value"])] = (
            Path(json.loads(base["value"])),
            int(pinned.group(1)) if pinned else None,
        )
    return models


def _load_servable(base_path: Path, version: int | None) -> Servable:
    import tensorflow as tf

    from convclass.serving.backends import InProcessBackend

    if version is None:
        version = max(int(p.name) for p in base_path.iterdir() if p.name.isdigit())
    try:
        signature = tf.saved_model.load(str(base_path / str(version))).signatures["serving_default"]
        (output,) = signature.structured_outputs
        return Servable(version, InProcessBackend(base_path / str(version), output=output).predict)
    except Exception:  # TF Serving keeps the version's status, END with the error
        return Servable(version, None, state="END")


class ConfigFileLoader:
    """TF Serving's ``--model_config_file`` + ``--model_config_file_poll_wait_seconds``: re-read the file,
    load what was added, unload (forget) what was removed."""

    def __init__(self, server: FakeTFServing, config_file: Path, poll_s: float):
        self.server, self.config_file, self.poll_s = server, config_file, poll_s
        self.reloads = 0
        self.sync()

    def sync(self) -> None:
        wanted = parse_model_config(self.config_file.read_text(encoding="utf-8"))
        for name in set(self.server.servables) - set(wanted):
            del self.server.servables[name]
        for name, (base_path, version) in wanted.items():
            held = self.server.servables.get(name)
            if held is None or (version is not None and held.version != version):
                self.server.servables[name] = Servable(version or 0, None, state="LOADING")
                self.server.servables[name] = _load_servable(base_path, version)
        self.reloads += 1


def run_as_model_server(argv: list[str]) -> None:
    """``tensorflow_model_server`` stand-in until SIGTERM: one SavedModel under --model_base_path, or the
    models of --model_config_file, re-read every --model_config_file_poll_wait_seconds."""
    import argparse
    import signal

    parser = argparse.ArgumentParser()
    parser.add_argument("--port")
    parser.add_argument("--rest_api_port", type=int, required=True)
    parser.add_argument("--model_name")
    parser.add_argument("--model_base_path", type=Path)
    parser.add_argument("--model_config_file", type=Path)
    parser.add_argument("--model_config_file_poll_wait_seconds", type=int, default=0)
    args = parser.parse_args(argv)
    loader: ConfigFileLoader | None = None
    if args.model_config_file is not None:
        server = FakeTFServing(None, model_name="", port=args.rest_api_port)
        loader = ConfigFileLoader(server, args.model_config_file, args.model_config_file_poll_wait_seconds)
    else:
        single = _load_servable(args.model_base_path, None)
        server = FakeTFServing(
            single.predict, model_name=args.model_name, version=single.version, port=args.rest_api_port
        )
    # A plain flag, polled: a handler that took a lock (Event.set) could deadlock with the main thread's wait.
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    server.start()
    next_poll = time.monotonic() + args.model_config_file_poll_wait_seconds
    while not stopping:
        time.sleep(0.05)
        if loader is not None and loader.poll_s > 0 and time.monotonic() >= next_poll:
            loader.sync()
            next_poll = time.monotonic() + loader.poll_s
    server.stop()
