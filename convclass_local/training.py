"""SageMaker training jobs as local processes: the real training entrypoint over an ``/opt/ml``-shaped
directory.

The runner follows SageMaker's container contract so that what runs here is what the training image runs:
hyperparameters as strings in ``input/config/hyperparameters.json``, each channel's S3 objects under
``input/data/<channel>/``, the model written to ``model/`` (uploaded as
``<S3OutputPath>/<job>/output/model.tar.gz``), a failure reason in ``output/failure``; exit code 0 means
Completed. Log lines are kept (and sent to CloudWatch Logs under ``/aws/sagemaker/TrainingJobs`` as SageMaker
does) and handed to a listener for live progress.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from convclass.artifacts import pack_model_dir
from convclass.deployment import sse_kms
from convclass.layout import TRAINING_LOG_GROUP, parse_s3_uri

LogListener = Callable[[str, str], None]  # (job name, log line)


@dataclass(frozen=True)
class MetricDefinition:
    name: str
    regex: str


@dataclass
class TrainingOutcome:
    """What SageMaker would report for a finished job."""

    status: str  # Completed | Failed | Stopped
    failure_reason: str = ""
    model_artifacts: str = ""
    final_metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class LocalTrainingRunner:
    """Runs CreateTrainingJob requests as local processes under ``workdir/training/<job>``.

    ``command`` is the container's ``train`` command; the default is the training entrypoint of this checkout
    run with the current interpreter (what the training image runs as ``train``).
    """

    workdir: Path
    metric_definitions: Sequence[MetricDefinition] = ()
    listener: LogListener | None = None
    command: Sequence[str] = (sys.executable, "-m", "convclass.training", "train")
    extra_env: Mapping[str, str] = field(default_factory=dict)
    _processes: dict[str, subprocess.Popen[str]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stopped: set[str] = field(default_factory=set, repr=False)

    def run(self, request: Mapping[str, Any]) -> TrainingOutcome:
        """Run one job given its CreateTrainingJob request (boto3 parameter names); blocks until it ends."""
        started = time.monotonic()
        job = str(request["TrainingJobName"])
        root = self.workdir / "training" / job
        try:
            self._prepare(root, request)
        except Exception as exc:  # a missing channel or unreadable input fails the job like SageMaker would
            return TrainingOutcome("Failed", f"ClientError: cannot stage input data: {exc}", seconds=0.0)
        lines, code = self._execute(job, root)
        self._ship_logs(job, lines)
        outcome = TrainingOutcome(status="Completed", final_metrics=self._final_metrics(lines))
        if job in self._stopped:
            outcome.status = "Stopped"
        elif code != 0:
            outcome.status = "Failed"
            failure = root / "output" / "failure"
            reason = failure.read_text(errors="replace").strip() if failure.exists() else ""
            outcome.failure_reason = (reason or f"AlgorithmError: training exited with status {code}")[:1024]
        else:
            try:
                outcome.model_artifacts = self._upload_model(root, job, request)
            except Exception as exc:
                outcome.status = "Failed"
                outcome.failure_reason = f"ClientError: cannot upload model artifacts: {exc}"[:1024]
        outcome.seconds = time.monotonic() - started
        return outcome

    def stop(self, job: str) -> None:
        """StopTrainingJob: SIGTERM, as SageMaker sends before it kills the container."""
        with self._lock:
            self._stopped.add(job)
            process = self._processes.get(job)
        if process is not None and process.poll() is None:
            process.terminate()

    def stop_all(self) -> None:
        with self._lock:
            jobs = list(self._processes)
        for job in jobs:
            self.stop(job)

    def _prepare(self, root: Path, request: Mapping[str, Any]) -> None:
        for sub in ("input/config", "input/data", "model", "output/data", "checkpoints", "code"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        config = root / "input" / "config"
        hyperparameters = {str(k): str(v) for k, v in (request.get("HyperParameters") or {}).items()}
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters, indent=2))
        channels = list(request.get("InputDataConfig") or [])
        (config / "inputdataconfig.json").write_text(
            json.dumps(
                {c["ChannelName"]: {"ContentType": c.get("ContentType", "")} for c in channels}, indent=2
            )
        )
        (config / "resourceconfig.json").write_text(
            json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}, indent=2)
        )
        s3 = boto3.client("s3")
        for channel in channels:
            uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
            self._download_prefix(s3, uri, root / "input" / "data" / channel["ChannelName"])

    @staticmethod
    def _download_prefix(s3: Any, uri: str, target: Path) -> None:
        bucket, prefix = parse_s3_uri(uri)
        target.mkdir(parents=True, exist_ok=True)
        found = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                relative = key[len(prefix) :].lstrip("/") or Path(key).name
                destination = (target / relative).resolve()
                if not destination.is_relative_to(target.resolve()):
                    raise ValueError("an S3 key escapes the channel directory")
                destination.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, key, str(destination))
                found += 1
        if not found:
            raise FileNotFoundError(f"no objects under {uri}")

    def _execute(self, job: str, root: Path) -> tuple[list[str], int]:
        env = {**os.environ, **self.extra_env, "SM_TRAINING_JOB_NAME": job, "PYTHONUNBUFFERED": "1"}
        log_path = root / "output" / "training.log"
        lines: list[str] = []
        process = subprocess.Popen(
            [*self.command, "--root", str(root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,  # Ctrl-C reaches us; we stop the job ourselves
        )
        with self._lock:
            self._processes[job] = process
        try:
            with log_path.open("w") as log:
                assert process.stdout is not None
                for raw in process.stdout:
                    line = raw.rstrip("\n")
                    lines.append(line)
                    log.write(raw)
                    if self.listener is not None:
                        self.listener(job, line)
            code = process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            with self._lock:
                self._processes.pop(job, None)
        return lines, code

    def _final_metrics(self, lines: Sequence[str]) -> dict[str, float]:
        """Last value of each metric, as SageMaker reports FinalMetricDataList from the MetricDefinitions."""
        metrics: dict[str, float] = {}
        compiled = [(d.name, re.compile(d.regex)) for d in self.metric_definitions]
        for line in lines:
            for name, pattern in compiled:
                match = pattern.search(line)
                if match:
                    try:
                        metrics[name] = float(match.group(1))
                    except (IndexError, ValueError):
                        continue
        return metrics

    @staticmethod
    def _upload_model(root: Path, job: str, request: Mapping[str, Any]) -> str:
        output_path = str(request["OutputDataConfig"]["S3OutputPath"]).rstrip("/")
        bucket, prefix = parse_s3_uri(output_path + "/")
        archive = pack_model_dir(root / "model", root / "output" / "model.tar.gz")
        key = f"{prefix}{job}/output/model.tar.gz"
        kms = request["OutputDataConfig"].get("KmsKeyId")
        extra = {"ExtraArgs": sse_kms(kms)} if kms else {}
        boto3.client("s3").upload_file(str(archive), bucket, key, **extra)
        return f"s3://{bucket}/{key}"

    @staticmethod
    def _ship_logs(job: str, lines: Sequence[str]) -> None:
        """Put the job's log lines into CloudWatch Logs where ``convclass logs`` (and SageMaker users)
        look."""
        if not lines:
            return
        logs = boto3.client("logs")
        stream = f"{job}/algo-1-{int(time.time())}"
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=TRAINING_LOG_GROUP)
        logs.create_log_stream(logGroupName=TRAINING_LOG_GROUP, logStreamName=stream)
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": line or " "} for line in lines]
        for start in range(0, len(events), 5000):
            logs.put_log_events(
                logGroupName=TRAINING_LOG_GROUP, logStreamName=stream, logEvents=events[start : start + 5000]
            )
