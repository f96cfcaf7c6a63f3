"""Serving latency and throughput over HTTP, against the same model called in-process in the same run.

    python benchmarks/bench_serve.py [--architecture cnn] [--emails N] [--singles N] [--batches N]
                                     [--tf-intra-op-threads N] ...

1. Generates support emails (the sample generator), builds a dataset with the preprocessing code and trains a
   model with the training entrypoint (``python -m convclass.training train``; default architecture unless
   ``--architecture``), exactly as a SageMaker training job would. A ``head`` runs on the shared encoder,
   exported as ``python -m convclass.serving export-encoder`` writes it and passed to the server as
   ``--encoder-dir``.
2. Starts the real server (``python -m convclass.serving serve`` → uvicorn on 127.0.0.1, a free port) and
   drives it from this, second, process with a bounded, sequential load generator over one keep-alive
   connection: ``--singles`` single-email JSON requests, then ``--batches`` requests of 32 emails.
3. The floor, in this process: ``EmailClassifier.classify`` (cleaning, tokenization, SavedModel serving
   function, top-k) called directly on the same emails, singly and in batches of 32. In-process and HTTP
   slices of the work alternate (``--rounds``), so both see the same load from whatever else runs on the
   machine. The bare SavedModel call is reported too (``model_only_*``): what cleaning costs on top.

``overhead_ms_p99`` = p99 single-request latency over HTTP − p99 in-process latency of the same emails
(``inprocess_ms_single``; the medians and ``overhead_ms_p50`` are reported too);
``batched_efficiency`` = emails/s over HTTP in batches of 32 ÷ emails/s in-process in batches of 32.
Floors on 2 cores: overhead_ms_p99 ≤ 10 and batched_efficiency ≥ 0.8. ``--tf-intra-op-threads`` sizes
TensorFlow's intra-op pool for the server and the in-process floor alike (default: TensorFlow's own, one
thread per core); ``email_tokens_*`` are the encoded lengths of the single-request emails.
``--compare-threads default,1`` also classifies the single-request emails in serving processes of their
own (``serving_latency.py``), one per intra-op setting, in alternating slices: ``inprocess_by_threads``
compares the settings under the same load (``loadavg_1m`` right after). The machine's load average is
reported with the figures: other work on the same cores shows up in them. The last line printed is one JSON
object.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from convclass.dataset import BuildOptions, build_dataset
from convclass.serving import InboundEmail, load_classifier, open_artifact, open_encoder
from convclass.serving.backends import set_tensorflow_threads
from convclass.serving.classifier import load_head
from convclass_local.generator import generate_emails, write_parquet

BATCH = 32
WARM_UP_REQUESTS = 30


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples), q))


def train(workdir: Path, n_emails: int, hyperparameters: dict[str, str]) -> tuple[Path, float]:
    """Preprocess generated emails and run the training entrypoint over an /opt/ml-shaped directory."""
    root = workdir / "opt_ml"
    channel = root / "input" / "data" / "dataset"
    export = workdir / "export.parquet"
    write_parquet(generate_emails(n_emails, seed=1), export)
    build_dataset([export], channel, BuildOptions(label_field="intent"))
    config = root / "input" / "config" / "hyperparameters.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps(hyperparameters))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "convclass.training", "train", "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if result.returncode != 0:
        failure = root / "output" / "failure"
        reason = failure.read_text() if failure.exists() else result.stderr[-2000:]
        raise SystemExit(f"training failed: {reason}")
    return root / "model", time.monotonic() - started


def request_bodies(emails: list[dict[str, Any]]) -> tuple[list[bytes], list[bytes]]:
    documents = [
        {
            "id": e["conversation_id"],
            "subject": e["subject"],
            "body": e["body"],
            "body_content_type": e["body_content_type"],
        }
        for e in emails
    ]
    singles = [json.dumps(d).encode() for d in documents]
    batches = [
        json.dumps({"emails": documents[i : i + BATCH]}).encode()
        for i in range(0, len(documents) - BATCH + 1, BATCH)
    ]
    return singles, batches


def inbound(e: dict[str, Any]) -> InboundEmail:
    return InboundEmail(
        body=e["body"], subject=e["subject"], content_type=e["body_content_type"], id=e["conversation_id"]
    )


class InProcess:
    """The floor: the same classifier code and model in this process, no HTTP, loaded as the server does."""

    def __init__(self, model_dir: Path, encoder_dir: Path | None):
        artifact = open_artifact(model_dir)
        if artifact.info.is_head:
            assert encoder_dir is not None
            self.classifier = load_head(artifact, open_encoder(encoder_dir))
            self.classifier.warm_up()
        else:
            self.classifier = load_classifier(artifact)

    def drive(self, items: list[list[InboundEmail]]) -> tuple[list[float], float]:
        latencies = []
        started_all = time.perf_counter()
        for item in items:
            started = time.perf_counter()
            self.classifier.classify(item)
            latencies.append((time.perf_counter() - started) * 1000)
        return latencies, time.perf_counter() - started_all

    def model_only(
        self, single: list[InboundEmail], batch: list[InboundEmail], repeats: int
    ) -> dict[str, float]:
        """The bare SavedModel call on already encoded emails: what cleaning and tokenization add on top."""
        classifier = self.classifier
        encoded_one = classifier.encode(classifier.clean(single))
        encoded_batch = classifier.encode(classifier.clean(batch))
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            classifier.probabilities(encoded_one)
            samples.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        for _ in range(repeats):
            classifier.probabilities(encoded_batch)
        seconds = time.perf_counter() - started
        return {
            "model_only_ms_single": statistics.median(samples),
            "model_only_emails_per_s_batched": repeats * len(batch) / seconds,
        }


def compare_threads(
    settings: str | None, model_dir: Path, encoder_dir: Path | None, emails: list[dict[str, Any]]
) -> dict[str, Any]:
    """Single-email latency per TF intra-op setting, each in a serving process of its own, interleaved."""
    if not settings:
        return {}
    from serving_latency import interleaved_latency, parse_threads

    names = [s.strip() for s in settings.split(",") if s.strip()]
    documents: list[str | dict[str, str | None]] = [
        {"body": e["body"], "subject": e["subject"], "content_type": e["body_content_type"]} for e in emails
    ]
    measured = interleaved_latency(
        model_dir,
        documents,
        encoder_dir=encoder_dir,
        settings=[parse_threads(name) for name in names],
        workdir=model_dir.parent,
    )
    figures: dict[str, Any] = {
        name: {
            "p50_ms": statistics.median(m["ms"]),
            "p90_ms": percentile(m["ms"], 90),
            "p99_ms": percentile(m["ms"], 99),
        }
        for name, m in zip(names, measured, strict=True)
    }
    figures["loadavg_1m"] = os.getloadavg()[0]
    return figures


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    model_dir: Path, port: int, log: Path, encoder_dir: Path | None, intra_op_threads: int | None
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "convclass.serving", "serve", "--model-dir", str(model_dir)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    if encoder_dir is not None:
        command += ["--encoder-dir", str(encoder_dir)]
    if intra_op_threads is not None:
        command += ["--tf-intra-op-threads", str(intra_op_threads)]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
                if response.status == 200:
                    return process
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("server did not become healthy within 300 s")


class OverHTTP:
    """The load generator: requests one after another over one keep-alive connection (concurrency 1)."""

    def __init__(self, port: int):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def drive(self, bodies: list[bytes]) -> tuple[list[float], float]:
        # A fresh connection per slice, opened before the clock starts: slices are separated by in-process
        # work, and an idle keep-alive connection may have been closed meanwhile.
        self.connection.close()
        self.connection.connect()
        headers = {"Content-Type": "application/json"}
        latencies = []
        started_all = time.perf_counter()
        for body in bodies:
            started = time.perf_counter()
            self.connection.request("POST", "/invocations", body=body, headers=headers)
            response = self.connection.getresponse()
            response.read()
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                raise SystemExit(f"server answered {response.status}")
        return latencies, time.perf_counter() - started_all

    def close(self) -> None:
        self.connection.close()


def interleaved(
    floor: InProcess, over_http: OverHTTP, direct: list[Any], bodies: list[bytes], rounds: int
) -> dict[str, tuple[list[float], float]]:
    """Alternate in-process and HTTP slices of the same work, so both see the same load on shared cores."""
    results: dict[str, tuple[list[float], float]] = {"inprocess": ([], 0.0), "http": ([], 0.0)}
    size = -(-len(bodies) // rounds)
    for index, start in enumerate(range(0, len(bodies), size)):
        runs = [
            ("inprocess", lambda s=start: floor.drive(direct[s : s + size])),
            ("http", lambda s=start: over_http.drive(bodies[s : s + size])),
        ]
        for name, run in runs if index % 2 == 0 else runs[::-1]:
            latencies, seconds = run()
            results[name][0].extend(latencies)
            results[name] = (results[name][0], results[name][1] + seconds)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--architecture", help="override the training default (minilm | cnn)")
    parser.add_argument("--emails", type=int, default=600, help="generated emails to train on")
    parser.add_argument(
        "--epochs", type=int, default=1, help="training epochs (latency does not depend on it)"
    )
    parser.add_argument("--singles", type=int, default=500, help="single-email requests to time")
    parser.add_argument("--batches", type=int, default=40, help="32-email requests to time")
    parser.add_argument("--rounds", type=int, default=10, help="in-process/HTTP alternations")
    parser.add_argument(
        "--tf-intra-op-threads", type=int, help="TensorFlow intra-op threads (default: one per core)"
    )
    parser.add_argument(
        "--compare-threads",
        help="TF intra-op settings (default = one per core) to compare in-process, e.g. default,1",
    )
    args = parser.parse_args()
    # Before anything here starts TensorFlow (the encoder export does): the floor gets the server's pools.
    set_tensorflow_threads(args.tf_intra_op_threads)

    hyperparameters = {"epochs": str(args.epochs)}
    if args.architecture:
        hyperparameters["architecture"] = args.architecture
    load_before = os.getloadavg()[0]
    load_emails = generate_emails(max(args.singles, args.batches * BATCH), seed=99)
    singles, batches = request_bodies(load_emails)
    singles, batches = singles[: args.singles], batches[: args.batches]

    with tempfile.TemporaryDirectory(prefix="convclass-bench-serve-") as scratch:
        workdir = Path(scratch)
        model_dir, train_seconds = train(workdir, args.emails, hyperparameters)
        info = json.loads((model_dir / "artifact.json").read_text())
        print(f"trained {info['architecture']} in {train_seconds:.1f} s", file=sys.stderr, flush=True)
        encoder_dir = None
        if info["architecture"] == "head":
            from convclass.training.head import export_encoder
            from convclass.training.trainer import BASE_MODEL_NAME, default_base_model_dir

            encoder_dir = workdir / "encoder"
            export_encoder(default_base_model_dir(), encoder_dir, name=BASE_MODEL_NAME, max_length=512)

        direct_singles = [[inbound(e)] for e in load_emails[: len(singles)]]
        direct_batches = [
            [inbound(e) for e in load_emails[i : i + BATCH]] for i in range(0, len(batches) * BATCH, BATCH)
        ]
        floor = InProcess(model_dir, encoder_dir)
        tokens = [
            int(floor.classifier.encode(floor.classifier.clean(item))["attention_mask"].sum())
            for item in direct_singles
        ]
        server = start_server(
            model_dir, port := free_port(), workdir / "server.log", encoder_dir, args.tf_intra_op_threads
        )
        client = OverHTTP(port)
        try:
            floor.drive(direct_singles[:WARM_UP_REQUESTS])
            client.drive(singles[:WARM_UP_REQUESTS])
            single = interleaved(floor, client, direct_singles, singles, args.rounds)
            batched = interleaved(floor, client, direct_batches, batches, args.rounds)
            model_only = floor.model_only(direct_singles[0], direct_batches[0], repeats=len(batches))
        finally:
            client.close()
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        by_threads = compare_threads(
            args.compare_threads, model_dir, encoder_dir, load_emails[: len(singles)]
        )

    single_ms, _ = single["http"]
    inprocess_single_ms, _ = single["inprocess"]
    batch_ms, batch_seconds = batched["http"]
    _, inprocess_batch_seconds = batched["inprocess"]
    emails_batched = len(batches) * BATCH
    result: dict[str, Any] = {
        "architecture": info["architecture"],
        "max_length": info["max_length"],
        "p50_ms_single": statistics.median(single_ms),
        "p99_ms_single": percentile(single_ms, 99),
        "emails_per_s_batched": emails_batched / batch_seconds,
        # The same percentile as p99_ms_single, so overhead_ms_p99 is what HTTP adds at the 99th percentile.
        "inprocess_ms_single": percentile(inprocess_single_ms, 99),
        "inprocess_p50_ms_single": statistics.median(inprocess_single_ms),
        "inprocess_emails_per_s_batched": emails_batched / inprocess_batch_seconds,
        "p50_ms_batch32": statistics.median(batch_ms),
        "ms_per_email_batched": 1000 * batch_seconds / emails_batched,
        **model_only,
    }
    result["overhead_ms_p99"] = result["p99_ms_single"] - result["inprocess_ms_single"]
    result["overhead_ms_p50"] = result["p50_ms_single"] - result["inprocess_p50_ms_single"]
    result["batched_efficiency"] = result["emails_per_s_batched"] / result["inprocess_emails_per_s_batched"]
    result["floors_met"] = result["overhead_ms_p99"] <= 10 and result["batched_efficiency"] >= 0.8
    result["goals_met"] = result["p99_ms_single"] <= 15 and result["emails_per_s_batched"] >= 800
    result.update(
        {
            "single_requests": len(single_ms),
            "batch_requests": len(batch_ms),
            "concurrency": 1,
            "rounds": args.rounds,
            "train_seconds": train_seconds,
            "cpu_count": os.cpu_count(),
            "tf_intra_op_threads": args.tf_intra_op_threads,
            "email_tokens_p50": statistics.median(tokens),
            "email_tokens_max": max(tokens),
            "loadavg_1m_before": load_before,
            "loadavg_1m_after": os.getloadavg()[0],
        }
    )
    if by_threads:
        result["inprocess_by_threads"] = by_threads
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
