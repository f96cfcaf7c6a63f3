"""The feedback loop end to end on a simulated tenant whose incoming emails shift.

    python benchmarks/bench_feedback.py [DATA_DIR] [--per-day 300] [--rare LABEL] [--new LABEL] [--seed 11]

Data: Banking77 (CC BY 4.0, PolyAI-LDN/task-specific-datasets ``banking_data/``), each text wrapped in a
generated support email (the sample generator). ``train.csv`` is split into the tenant's history (what the
first model trains on) and a pool the live stream draws from; ``test.csv`` is only used for the figures after
retraining. In the history the ``--rare`` label keeps 15 examples and the ``--new`` label none.

What runs, in order:

1. The first model: the real dataset builder and the real training entrypoint
   (``python -m convclass.training train``, ``architecture=cnn``) on the history.
2. A moto account with the data bucket, the training queue, a training state machine and the bus; the
   first model's champion record and dataset manifest are written where the pipeline writes them.
3. Days of traffic: every email is classified by the first model through the serving classifier
   (``EmailClassifier.classify``, top 3); its ``Email Classified`` event and the agent's
   ``Conversation Label Confirmed`` event (the true label) go through the real feedback Lambda handler as SQS
   batches. Two days follow the history's distribution, then ``--shift`` of the stream moves to the rare
   label and ``--new-share`` to the new one. After each day the handler has evaluated the retraining policy
   (defaults) as of the day's last event.
4. When the policy queued a request, the real starter Lambda starts it on the state machine (the run
   carries the reason). The second model is then trained with the same entrypoint on the history plus the
   stream's conversations, whose exported label is the one the first model auto-applied, overridden by the
   agents' confirmations (``convclass.feedback.labels.apply_confirmations``). The state machine in this
   benchmark only records the run; it does not run the pipeline (the embedded-AWS test covers that path).
5. Figures: ``agreement_before`` is the feedback loop's own top-1 agreement over the shifted days (first
   model); ``agreement_after`` is the second model's top-1 accuracy on ``test.csv`` weighted by the shifted
   stream's label mix (per-label accuracy x share), ``new_label_recall_after`` its recall of the new label on
   ``test.csv``. ``in_distribution_test_accuracy`` is the first model's accuracy on its own test split.

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq

from convclass.dataset import BuildOptions, build_dataset
from convclass.events import EMAIL_CLASSIFIED, INFERENCE_SOURCE, TrainingRunRequest
from convclass.feedback.events import HOST_SOURCE, LABEL_CONFIRMED, LabelConfirmed
from convclass.feedback.labels import apply_confirmations, confirmed_labels
from convclass.feedback.policy import RetrainingPolicy
from convclass.feedback.store import FeedbackStore
from convclass.records import EXPORT_RECORD_SCHEMA, ExportRecord
from convclass.training.data import DATASET_CHANNEL
from convclass_local.generator import BANKING77_DEFAULT_DIR, LabelledText, iter_emails, load_banking77

TENANT, CLASSIFIER, LABEL_FIELD = "acme", "intent", "intent"
RARE_KEPT = 15
HISTORY_SHARE = 0.85
PRESHIFT_DAYS = 2
MAX_SHIFTED_DAYS = 4
BATCH = 100
START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
HYPERPARAMETERS = {"architecture": "cnn", "seed": "7"}


@dataclass(frozen=True)
class Email:
    record: dict[str, Any]
    label: str


def wrap(examples: Sequence[LabelledText], seed: int, prefix: str) -> list[Email]:
    """Each example as a generated support email (HTML, quotes, signatures ...) with a unique conversation."""
    emails = []
    for index, record in enumerate(
        iter_emails(examples=examples, seed=seed, tenant_id=TENANT, duplicate_rate=0)
    ):
        record["conversation_id"] = f"{prefix}-{index:06d}"
        emails.append(Email(record, examples[index].label))
    return emails


def write_export(records: Sequence[dict[str, Any]], path: Path) -> Path:
    rows = [{**r, "labels": list(r["labels"].items())} for r in records]
    pq.write_table(pa.Table.from_pylist(rows, schema=EXPORT_RECORD_SCHEMA), path)
    return path


def train(records: Sequence[dict[str, Any]], work: Path, name: str) -> tuple[Path, dict[str, Any], float]:
    """Real dataset builder + real training entrypoint (cnn); returns the model dir, manifest and seconds."""
    started = time.monotonic()
    export = write_export(records, work / f"{name}-export.parquet")
    dataset = work / f"{name}-dataset"
    manifest = build_dataset([export], dataset, BuildOptions(label_field=LABEL_FIELD))
    root = work / f"{name}-job"
    shutil.copytree(dataset, root / "input" / "data" / DATASET_CHANNEL)
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(HYPERPARAMETERS))
    job = subprocess.run(
        [sys.executable, "-m", "convclass.training", "train", "--root", str(root)],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        check=False,
    )
    if job.returncode != 0:
        raise RuntimeError(f"training {name} failed: {job.stderr[-2000:]}")
    return root / "model", manifest.model_dump(mode="json"), time.monotonic() - started


@cache
def _classifier(model_dir: Path) -> Any:
    from convclass.serving.classifier import load_classifier, open_artifact

    return load_classifier(open_artifact(model_dir))


def classify(model_dir: Path, emails: Sequence[Email]) -> list[dict[str, Any]]:
    """The serving classifier's predictions (as the endpoint answers them), top 3."""
    from convclass.serving.classifier import InboundEmail

    classifier = _classifier(model_dir)
    inbound = [
        InboundEmail(
            body=e.record["body"],
            subject=e.record["subject"],
            content_type=e.record["body_content_type"],
            id=e.record["conversation_id"],
        )
        for e in emails
    ]
    return [p.model_dump(mode="json") for p in classifier.classify(inbound, top_k=3)]


def envelope(event_id: str, detail_type: str, source: str, when: datetime, detail: dict[str, Any]) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": event_id,
            "detail-type": detail_type,
            "source": source,
            "account": "123456789012",
            "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        }
    )


def day_events(emails: Sequence[Email], predictions: Sequence[dict[str, Any]], day: datetime) -> list[str]:
    """Email Classified as the inference workflow publishes it, and the agent's confirmation hours later."""
    bodies = []
    step = timedelta(hours=10) / max(1, len(emails))
    for index, (email, prediction) in enumerate(zip(emails, predictions, strict=True)):
        cid, when = email.record["conversation_id"], day + index * step
        detail = {
            "tenant": TENANT,
            "classifier": CLASSIFIER,
            "conversation_id": cid,
            "message_id": f"msg-{cid}",
            "prediction": {"predictions": [prediction]},
        }
        bodies.append(envelope(f"cls-{cid}", EMAIL_CLASSIFIED, INFERENCE_SOURCE, when, detail))
        confirmed = {
            "event_id": f"conf-{cid}",
            "tenant": TENANT,
            "classifier": CLASSIFIER,
            "conversation_id": cid,
            "label": email.label,
            "confirmed_at": (when + timedelta(hours=2)).isoformat(),
            "agent": f"agent-{index % 7}",
        }
        bodies.append(
            envelope(f"bus-conf-{cid}", LABEL_CONFIRMED, HOST_SOURCE, when + timedelta(hours=2), confirmed)
        )
    return bodies


def sqs_event(bodies: Sequence[str]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": body,
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:convclass-bench-feedback-events",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


@dataclass
class _Context:
    function_name: str = "convclass-bench-feedback"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:convclass-bench-feedback"
    aws_request_id: str = "bench"


@contextmanager
def moto_account() -> Iterator[dict[str, Any]]:
    from moto import mock_aws

    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )
    with mock_aws():
        key = boto3.client("kms").create_key()["KeyMetadata"]["Arn"]
        boto3.client("s3").create_bucket(Bucket="convclass-bench-data")
        queue = boto3.client("sqs").create_queue(QueueName="convclass-bench-training-requests")["QueueUrl"]
        boto3.client("events").create_event_bus(Name="convclass-bench")
        role = boto3.client("iam").create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        wait = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}
        machine = boto3.client("stepfunctions").create_state_machine(
            name="convclass-bench-training", definition=json.dumps(wait), roleArn=role
        )["stateMachineArn"]
        yield {"key": key, "bucket": "convclass-bench-data", "queue": queue, "machine": machine}


def deploy_first_model(account: dict[str, Any], manifest: dict[str, Any], accuracy: float) -> None:
    """champion.json + dataset manifest + the run's execution, as the training pipeline leaves them."""
    from convclass.deployment import sse_kms
    from convclass.layout import ClassifierLayout

    sfn, s3 = boto3.client("stepfunctions"), boto3.client("s3")
    request = TrainingRunRequest(
        tenant=TENANT,
        classifier=CLASSIFIER,
        label_field=LABEL_FIELD,
        data_source={"kind": "files", "uri": "s3://convclass-bench-drops/acme/"},  # type: ignore[arg-type]
        options={"hosting": "dedicated"},  # type: ignore[arg-type]  # as the champion record below
    )
    execution = sfn.start_execution(
        stateMachineArn=account["machine"], name="acme--intent--first", input=request.model_dump_json()
    )["executionArn"]
    where = ClassifierLayout(TENANT, CLASSIFIER)
    champion = {
        "run_id": "run-1",
        "model_name": "cc-acme--intent--run-1",
        "endpoint_config_name": "cc-acme--intent--run-1-cfg",
        "model_artifacts": "s3://convclass-bench-data/model.tar.gz",
        "training_job_name": "cc-acme--intent--run-1",
        "metrics": {"accuracy": accuracy, "macro_f1": accuracy},
        "execution": execution,
        "deployed_at": (START - timedelta(days=1)).isoformat(),
    }
    s3.put_object(
        Bucket=account["bucket"], Key=where.champion_key, Body=json.dumps(champion), **sse_kms(account["key"])
    )
    s3.put_object(
        Bucket=account["bucket"],
        Key=where.dataset_manifest_key("run-1"),
        Body=json.dumps(manifest),
        **sse_kms(account["key"]),
    )


def weighted_accuracy(predicted: Sequence[str], truth: Sequence[str], mix: dict[str, float]) -> float:
    right, total = Counter(), Counter()
    for p, t in zip(predicted, truth, strict=True):
        total[t] += 1
        right[t] += p == t
    return sum(share * right[label] / total[label] for label, share in mix.items() if total[label])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_dir", nargs="?", default=str(BANKING77_DEFAULT_DIR))
    parser.add_argument("--per-day", type=int, default=300)
    parser.add_argument("--rare", default="card_arrival")
    parser.add_argument("--new", default="lost_or_stolen_card")
    parser.add_argument("--shift", type=float, default=0.25, help="share of the stream moving to --rare")
    parser.add_argument("--new-share", type=float, default=0.10, help="share of the stream with --new")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--min-unknown",
        type=int,
        default=RetrainingPolicy().min_unknown_label_conversations,
        help="the policy's min_unknown_label_conversations (other settings keep their defaults)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    rng = random.Random(args.seed)

    by_label: dict[str, list[LabelledText]] = defaultdict(list)
    for example in load_banking77(args.data_dir, "train"):
        by_label[example.label].append(example)
    if args.rare not in by_label or args.new not in by_label:
        raise SystemExit(f"--rare and --new must be Banking77 labels, e.g. {sorted(by_label)[:3]}")
    history: list[LabelledText] = []
    pool: dict[str, list[LabelledText]] = {}
    for label, examples in sorted(by_label.items()):
        rng.shuffle(examples)
        keep = (
            0
            if label == args.new
            else RARE_KEPT
            if label == args.rare
            else int(HISTORY_SHARE * len(examples))
        )
        history += examples[:keep]
        pool[label] = examples[keep:]

    from functions.feedback import handler as feedback
    from functions.starter import handler as starter

    with (
        tempfile.TemporaryDirectory(prefix="convclass-bench-feedback-") as scratch,
        moto_account() as account,
    ):
        work = Path(scratch)
        history_emails = wrap(history, args.seed, "hist")
        model_1, manifest_1, train_1_s = train([e.record for e in history_emails], work, "model-1")
        metrics_1 = json.loads((model_1 / "metrics.json").read_text())
        deploy_first_model(account, manifest_1, metrics_1["accuracy"])
        from convclass.deployment import (
            DATA_BUCKET_ENV,
            EVENT_BUS_ENV,
            FEEDBACK_POLICIES_ENV,
            KMS_KEY_ENV,
            TRAINING_QUEUE_URL_ENV,
            TRAINING_STATE_MACHINE_ENV,
        )

        os.environ.update(
            {
                DATA_BUCKET_ENV: account["bucket"],
                KMS_KEY_ENV: account["key"],
                TRAINING_QUEUE_URL_ENV: account["queue"],
                EVENT_BUS_ENV: "convclass-bench",
                TRAINING_STATE_MACHINE_ENV: account["machine"],
                FEEDBACK_POLICIES_ENV: json.dumps(
                    {f"{TENANT}/{CLASSIFIER}": {"min_unknown_label_conversations": args.min_unknown}}
                ),
            }
        )
        feedback._loop.cache_clear()
        starter._stepfunctions.cache_clear()

        known = [label for label in sorted(pool) if label not in (args.rare, args.new)]
        history_mix = Counter(e.label for e in history if e.label in known)
        shifted_mix = {args.rare: args.shift, args.new: args.new_share}
        rest = 1 - args.shift - args.new_share
        shifted_mix |= {label: rest * n / sum(history_mix.values()) for label, n in history_mix.items()}

        def draw(mix: dict[str, float], n: int) -> list[LabelledText]:
            labels = rng.choices(list(mix), weights=list(mix.values()), k=n)
            return [pool[label].pop() for label in labels if pool[label]]

        sqs = boto3.client("sqs")
        stream_records: list[dict[str, Any]] = []
        predicted_labels: dict[str, str] = {}
        shift_day, detected_day, day_index, failures = PRESHIFT_DAYS, None, 0, 0
        preshift_mix = {label: float(n) for label, n in Counter(e.label for e in history).items()}
        while day_index < PRESHIFT_DAYS + MAX_SHIFTED_DAYS and detected_day is None:
            mix = preshift_mix if day_index < shift_day else shifted_mix
            emails = wrap(draw(mix, args.per_day), args.seed + 100 + day_index, f"d{day_index}")
            predictions = classify(model_1, emails)
            for email, prediction in zip(emails, predictions, strict=True):
                predicted_labels[email.record["conversation_id"]] = prediction["labels"][0]["label"]
            bodies = day_events(emails, predictions, START + timedelta(days=day_index))
            for first in range(0, len(bodies), BATCH):
                response = feedback.handler(sqs_event(bodies[first : first + BATCH]), _Context())
                failures += len(response["batchItemFailures"])
            stream_records += [e.record for e in emails]
            queued = sqs.receive_message(QueueUrl=account["queue"], MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if queued:
                starter.handler(sqs_event([m["Body"] for m in queued]), _Context())
                detected_day = day_index
            day_index += 1

        store = FeedbackStore(boto3.client("s3"), account["bucket"], account["key"])
        last = START + timedelta(days=day_index)
        status = feedback._loop().status(TENANT, CLASSIFIER, last)
        assert status is not None
        shifted_start = START + timedelta(days=shift_day)
        shifted = feedback._loop().store.since(TENANT, CLASSIFIER, shifted_start, last)
        from convclass.feedback.metrics import agreement

        before = agreement(*shifted)
        runs = boto3.client("stepfunctions").list_executions(stateMachineArn=account["machine"])["executions"]
        automatic = [r for r in runs if "feedback-" in r["name"]]
        reason = None
        if automatic:
            described = boto3.client("stepfunctions").describe_execution(
                executionArn=automatic[0]["executionArn"]
            )
            reason = TrainingRunRequest.model_validate_json(described["input"]).reason

        result: dict[str, Any] = {
            "confirmations": status.agreement.confirmations,
            "capture_failures": failures,
            "psi": status.drift.psi,
            "psi_band": status.drift.band,
            "unknown_labels": status.drift.unknown_labels,
            "drift_detected": detected_day is not None and detected_day >= shift_day,
            "false_alarm_before_shift": detected_day is not None and detected_day < shift_day,
            "days_to_detect": None if detected_day is None else detected_day - shift_day + 1,
            "retrain_started": bool(automatic),
            "retrain_reason": reason,
            "in_distribution_test_accuracy": metrics_1["accuracy"],
            "agreement_preshift": None,
            "agreement_before": before.top1,
            "agreement_before_top3": before.top3,
        }
        preshift = agreement(*store.since(TENANT, CLASSIFIER, START, shifted_start))
        result["agreement_preshift"] = preshift.top1

        if automatic:
            # The next training set: history + the stream's conversations, exported with the label the first
            # model auto-applied, overridden by what agents confirmed.
            confirmations: list[LabelConfirmed] = store.confirmations(
                TENANT, CLASSIFIER, [(START + timedelta(days=d)).date() for d in range(day_index + 1)]
            )
            exported = [
                ExportRecord.model_validate(
                    {**r, "labels": {LABEL_FIELD: predicted_labels[r["conversation_id"]]}}
                )
                for r in stream_records
            ]
            overridden = list(
                apply_confirmations(
                    exported,
                    confirmed_labels(confirmations, TENANT, CLASSIFIER),
                    tenant=TENANT,
                    label_field=LABEL_FIELD,
                )
            )
            result["labels_overridden"] = sum(
                a.labels != b.labels for a, b in zip(exported, overridden, strict=True)
            )
            records = [e.record for e in history_emails] + [r.model_dump() for r in overridden]
            model_2, _, train_2_s = train(records, work, "model-2")
            metrics_2 = json.loads((model_2 / "metrics.json").read_text())
            test = wrap(load_banking77(args.data_dir, "test"), args.seed + 999, "test")
            truth = [e.label for e in test]
            after = [p["labels"][0]["label"] for p in classify(model_2, test)]
            before_test = [p["labels"][0]["label"] for p in classify(model_1, test)]
            new_rows = [(p, t) for p, t in zip(after, truth, strict=True) if t == args.new]
            result |= {
                "agreement_after": weighted_accuracy(after, truth, shifted_mix),
                "agreement_before_on_test": weighted_accuracy(before_test, truth, shifted_mix),
                "new_label_recall_after": sum(p == t for p, t in new_rows) / len(new_rows),
                "retrained_test_accuracy": metrics_2["accuracy"],
                "train_seconds": [round(train_1_s, 1), round(train_2_s, 1)],
            }
            result["gap_to_in_distribution_points"] = 100 * (
                result["in_distribution_test_accuracy"] - result["agreement_after"]
            )
        result |= {
            "per_day": args.per_day,
            "min_unknown_label_conversations": args.min_unknown,
            "history_examples": len(history),
            "rare_label": args.rare,
            "new_label": args.new,
            "seconds": round(time.monotonic() - started, 1),
        }
    return result


if __name__ == "__main__":
    print(json.dumps(main()), flush=True)
