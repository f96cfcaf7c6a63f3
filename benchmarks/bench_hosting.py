"""Many tenants on one multi-model server: memory per model, cold loads, warm latency against dedicated, cost.

    python benchmarks/bench_hosting.py [DATA_DIR] [--heads 1000] [--cnns 200] [--warm-requests 300]

1. Exports the shared MiniLM encoder (the installed all-MiniLM-L6-v2 weights) and writes ``--heads``
   distinct per-tenant ``head`` artifacts (77 Banking77 labels; kernel, bias and 1,500 token TF-IDF features
   re-initialised per tenant) and ``--cnns`` distinct ``cnn`` artifacts (the default cnn architecture over a
   tokenizer trained on Banking77, weights re-initialised per tenant), as SageMaker would extract them under
   /opt/ml/models.
2. Starts the real server in multi-model mode (``python -m convclass.serving serve --multi-model``) on
   127.0.0.1 and loads every model over HTTP (``POST /models``), timing each load (cold load: verify the
   artifact, read it, and for a SavedModel load it and answer a warm-up call) and reading the server's RSS
   before and after.
3. Starts the same head and the same cnn in single-model mode (a dedicated endpoint each) and sends
   single-email requests (Banking77 test texts) alternately to the multi-model server (a random loaded
   tenant each time) and to the dedicated server, over keep-alive connections, so both see the same load.
4. Feeds the measured memory and latency into the cost model (convclass.hosting.cost) at 1,000 tenants x
   5,000 emails a month.

Goals: shared <= $5 per tenant-month, cold load p99 <= 2 s (cnn) and <= 50 ms (head), warm p99 within 2x of
dedicated. The machine's load average is reported beside the figures. The last line printed is one JSON
object.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from convclass.artifacts import (
    ARTIFACT_FILE,
    HEAD_FILE,
    LABELS_FILE,
    ArtifactInfo,
    EncoderManifest,
    LabelMap,
    TokenFeatures,
    saved_model_path,
    write_json_model,
)
from convclass.cleaning import CLEANING_VERSION, clean_email
from convclass.heads import Head, TokenHead, write_head
from convclass.hosting.cost import Workload, estimate
from convclass.tokenization import load_tokenizer, save_tokenizer, train_tokenizer
from convclass_local.generator import BANKING77_DEFAULT_DIR, load_banking77

MAX_LENGTH = 128
TENANTS = 1000
EMAILS_PER_MONTH = 5000
WARM_UP_REQUESTS = 20
#: Token features per head, as training chose them on Banking77 (1,489 unigrams, weight 0.25).
HEAD_TOKEN_FEATURES = 1500
HEAD_TOKEN_WEIGHT = 0.25


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples), q))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_heads(
    root: Path, n: int, manifest: EncoderManifest, labels: tuple[str, ...], vocab_size: int
) -> list[Path]:
    """Heads in the form training writes them: embedding kernel and bias plus token TF-IDF features."""
    rng = np.random.default_rng(1)
    dim = manifest.encoder.dim
    token_features = TokenFeatures(
        vocab_size=vocab_size, max_ngram=1, n_features=HEAD_TOKEN_FEATURES, weight=HEAD_TOKEN_WEIGHT
    )
    dirs = []
    for i in range(n):
        model_dir = root / f"head-{i:04d}" / "model"
        model_dir.mkdir(parents=True)
        write_head(
            model_dir / HEAD_FILE,
            Head(
                rng.normal(scale=0.5, size=(dim, len(labels))).astype(np.float32),
                rng.normal(scale=0.1, size=len(labels)).astype(np.float32),
                TokenHead(
                    token_features,
                    np.sort(rng.choice(vocab_size, size=HEAD_TOKEN_FEATURES, replace=False)).astype(np.int64),
                    rng.uniform(1.0, 8.0, size=HEAD_TOKEN_FEATURES).astype(np.float32),
                    rng.normal(scale=1.0, size=(HEAD_TOKEN_FEATURES, len(labels))).astype(np.float32),
                ),
            ),
        )
        write_json_model(model_dir / LABELS_FILE, LabelMap(labels=tuple(f"t{i}.{label}" for label in labels)))
        info = ArtifactInfo(
            model_version=1,
            architecture="head",
            base_model=manifest.encoder.name,
            max_length=MAX_LENGTH,
            n_labels=len(labels),
            cleaning_version=CLEANING_VERSION,
            encoder=manifest.encoder,
            token_features=token_features,
        )
        write_json_model(model_dir / ARTIFACT_FILE, info)
        dirs.append(model_dir)
    return dirs


def write_cnns(root: Path, n: int, texts: list[str], labels: tuple[str, ...]) -> list[Path]:
    """One cnn exported once, then re-saved per tenant with re-initialised weights (no retracing)."""
    import tensorflow as tf

    from convclass.training.config import TrainingConfig
    from convclass.training.export import export_saved_model
    from convclass.training.models import build_cnn

    tokenizer = train_tokenizer(texts, vocab_size=8000)
    model = build_cnn(TrainingConfig(architecture="cnn").resolved(), len(labels), tokenizer.get_vocab_size())
    template = root.parent / "cnn-template"
    export_saved_model(model, template)
    loaded = tf.saved_model.load(str(template))
    signature = loaded.signatures["serving_default"]
    rng = np.random.default_rng(2)
    dirs = []
    for i in range(n):
        for variable in signature.variables:
            shape = tuple(variable.shape)
            variable.assign(rng.normal(scale=0.05, size=shape).astype(variable.dtype.as_numpy_dtype))
        model_dir = root / f"cnn-{i:04d}" / "model"
        tf.saved_model.save(
            loaded, str(saved_model_path(model_dir, 1)), signatures={"serving_default": signature}
        )
        save_tokenizer(tokenizer, model_dir)
        write_json_model(model_dir / LABELS_FILE, LabelMap(labels=tuple(f"c{i}.{label}" for label in labels)))
        info = ArtifactInfo(
            model_version=1,
            architecture="cnn",
            max_length=MAX_LENGTH,
            n_labels=len(labels),
            cleaning_version=CLEANING_VERSION,
        )
        write_json_model(model_dir / ARTIFACT_FILE, info)
        dirs.append(model_dir)
    shutil.rmtree(template)
    return dirs


class Server:
    """``python -m convclass.serving serve`` in a child process, and one keep-alive connection to it."""

    def __init__(self, *args: str):
        self.port = free_port()
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        command = [sys.executable, "-m", "convclass.serving", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--log-level", "warning", "--backend", "inprocess", *args]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.connection: http.client.HTTPConnection | None = None

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"server exited: {self.process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                status, _ = self.request("GET", "/ping")
                if status == 200:
                    return
            except OSError:
                self.connection = None
            time.sleep(0.2)
        raise SystemExit("server did not become ready")

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = {"content-type": "application/json"} if body is not None else {}
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def reconnect(self) -> None:
        """Drop the kept-alive connection: after a long idle spell the server may have closed it."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    @property
    def rss_mb(self) -> float:
        return float(psutil.Process(self.process.pid).memory_info().rss / 2**20)

    def stop(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def load_all(server: Server, dirs: list[Path]) -> list[float]:
    samples = []
    for model_dir in dirs:
        body = json.dumps({"model_name": model_dir.parent.name, "url": str(model_dir)}).encode()
        started = time.perf_counter()
        status, answer = server.request("POST", "/models", body)
        samples.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise SystemExit(f"loading {model_dir.parent.name} answered {status}: {answer[:300]!r}")
    return samples


def count_loaded(server: Server) -> int:
    """Walk ``GET /models`` page by page, as SageMaker does."""
    count, token = 0, ""
    while True:
        _, listing = server.request("GET", "/models" + (f"?next_page_token={token}" if token else ""))
        page = json.loads(listing)
        count += len(page["models"])
        token = page.get("nextPageToken", "")
        if not token:
            return count


def warm_latencies(
    shared: Server, names: list[str], dedicated: Server, bodies: list[bytes], requests: int, seed: int
) -> tuple[list[float], list[float]]:
    """Alternate single-email requests: a random loaded tenant on ``shared``, then ``dedicated``."""
    rng = np.random.default_rng(seed)
    # Starting the dedicated servers can leave the shared one idle past its keep-alive timeout on a loaded
    # machine: fresh connections, opened during the warm-up requests that are not measured.
    shared.reconnect()
    dedicated.reconnect()
    shared_ms: list[float] = []
    dedicated_ms: list[float] = []
    for i in range(requests + WARM_UP_REQUESTS):
        body = bodies[i % len(bodies)]
        name = names[int(rng.integers(len(names)))]
        for server, path, sink in (
            (shared, f"/models/{name}/invoke", shared_ms),
            (dedicated, "/invocations", dedicated_ms),
        ):
            started = time.perf_counter()
            status, answer = server.request("POST", path, body)
            elapsed = (time.perf_counter() - started) * 1000
            if status != 200:
                raise SystemExit(f"{path} answered {status}: {answer[:300]!r}")
            if i >= WARM_UP_REQUESTS:
                sink.append(elapsed)
    return shared_ms, dedicated_ms


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", nargs="?", type=Path, default=BANKING77_DEFAULT_DIR, help="Banking77 folder")
    parser.add_argument("--heads", type=int, default=1000)
    parser.add_argument("--cnns", type=int, default=200)
    parser.add_argument("--warm-requests", type=int, default=300)
    parser.add_argument("--memory-budget-mb", type=int, default=16_000)
    args = parser.parse_args()
    try:
        train_rows = load_banking77(args.data, "train")
        test_rows = load_banking77(args.data, "test")
    except FileNotFoundError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    labels = tuple(sorted({row.label for row in train_rows}))
    texts = [clean_email(None, row.text, "text/plain").text for row in train_rows]
    bodies = [
        json.dumps({"body": row.text, "body_content_type": "text/plain"}).encode() for row in test_rows[:200]
    ]

    from convclass.training.head import export_encoder
    from convclass.training.trainer import BASE_MODEL_NAME, default_base_model_dir

    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="convclass-bench-hosting-") as scratch:
        work = Path(scratch)
        models_root = work / "models"
        models_root.mkdir()
        started = time.monotonic()
        manifest = export_encoder(
            default_base_model_dir(), work / "encoder", name=BASE_MODEL_NAME, max_length=MAX_LENGTH
        )
        vocab_size = load_tokenizer(work / "encoder" / "tokenizer.json").get_vocab_size()
        heads = write_heads(models_root, args.heads, manifest, labels, vocab_size)
        cnns = write_cnns(models_root, args.cnns, texts, labels)
        generation_seconds = time.monotonic() - started
        print(
            f"generated {len(heads)} heads and {len(cnns)} cnn models in {generation_seconds:.0f} s",
            flush=True,
        )
        try:
            shared = Server(
                "--multi-model",
                "--encoder-dir",
                str(work / "encoder"),
                "--models-root",
                str(models_root),
                "--memory-budget-mb",
                str(args.memory_budget_mb),
            )
            servers.append(shared)
            shared.wait_ready()
            base_rss = shared.rss_mb
            head_loads = load_all(shared, heads)
            heads_rss = shared.rss_mb
            cnn_loads = load_all(shared, cnns)
            end_rss = shared.rss_mb
            models_loaded = count_loaded(shared)
            print(
                f"loaded {models_loaded} models; rss {base_rss:.0f} -> {heads_rss:.0f} -> {end_rss:.0f} MB",
                flush=True,
            )

            dedicated_head = Server("--model-dir", str(heads[0]), "--encoder-dir", str(work / "encoder"))
            dedicated_cnn = Server("--model-dir", str(cnns[0]))
            servers += [dedicated_head, dedicated_cnn]
            dedicated_head.wait_ready()
            dedicated_cnn.wait_ready()
            head_names = [d.parent.name for d in heads]
            cnn_names = [d.parent.name for d in cnns]
            head_warm, head_dedicated = warm_latencies(
                shared, head_names, dedicated_head, bodies, args.warm_requests, seed=3
            )
            cnn_warm, cnn_dedicated = warm_latencies(
                shared, cnn_names, dedicated_cnn, bodies, args.warm_requests, seed=4
            )
        finally:
            for server in servers:
                server.stop()

    head_rss_per_model = (heads_rss - base_rss) / len(heads)
    cnn_rss_per_model = (end_rss - heads_rss) / len(cnns)
    report = estimate(
        Workload(
            tenants=TENANTS,
            emails_per_month=EMAILS_PER_MONTH,
            model_mb=max(head_rss_per_model, 0.0),
            cpu_ms_per_email=percentile(head_warm, 50),
            shared_base_mb=base_rss,
        )
    )
    all_loads = head_loads + cnn_loads
    result: dict[str, Any] = {
        "heads_loaded": len(heads),
        "cnn_loaded": len(cnns),
        "server_base_rss_mb": base_rss,
        "server_end_rss_mb": end_rss,
        "head_rss_mb_per_model": head_rss_per_model,
        "cnn_rss_mb_per_model": cnn_rss_per_model,
        "head_cold_load_ms_p50": percentile(head_loads, 50),
        "head_cold_load_ms_p99": percentile(head_loads, 99),
        "cnn_cold_load_ms_p50": percentile(cnn_loads, 50),
        "cnn_cold_load_ms_p99": percentile(cnn_loads, 99),
        "warm_p50_ms": percentile(head_warm, 50),
        "dedicated_warm_p50_ms": percentile(head_dedicated, 50),
        "cnn_warm_p50_ms": percentile(cnn_warm, 50),
        "cnn_warm_p99_ms": percentile(cnn_warm, 99),
        "cnn_dedicated_warm_p50_ms": percentile(cnn_dedicated, 50),
        "cnn_dedicated_warm_p99_ms": percentile(cnn_dedicated, 99),
        "usd_per_tenant_month_serverless": report.serverless,
        "shared_instances": report.shared_plan.instances,
        "warm_requests": args.warm_requests,
        "generation_seconds": generation_seconds,
        "load_average_1m": os.getloadavg()[0],
        "cpu_count": os.cpu_count(),
        "models_loaded": models_loaded,
        "rss_mb_per_model": (end_rss - base_rss) / models_loaded,
        "cold_load_ms_p50": percentile(all_loads, 50),
        "cold_load_ms_p99": percentile(all_loads, 99),
        "warm_p99_ms": percentile(head_warm, 99),
        "dedicated_warm_p99_ms": percentile(head_dedicated, 99),
        "usd_per_tenant_month_dedicated": report.dedicated,
        "usd_per_tenant_month_shared": report.shared,
    }
    result["goals"] = {
        "shared_usd_le_5": result["usd_per_tenant_month_shared"] <= 5,
        "head_cold_load_p99_le_50ms": result["head_cold_load_ms_p99"] <= 50,
        "cnn_cold_load_p99_le_2s": result["cnn_cold_load_ms_p99"] <= 2000,
        "warm_p99_within_2x_dedicated": result["warm_p99_ms"] <= 2 * result["dedicated_warm_p99_ms"],
        "cnn_warm_p99_within_2x_dedicated": result["cnn_warm_p99_ms"]
        <= 2 * result["cnn_dedicated_warm_p99_ms"],
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
