"""Train convclass's default model, the ``head`` model and a TF-IDF + logistic-regression baseline on
Banking77 in the same run.

Banking77 (Casanueva et al., 2020; CC BY 4.0) comes from github.com/PolyAI-LDN/task-specific-datasets
(``banking_data/``): ``train.csv`` is used for training, ``test.csv`` only for the reported figures.

    python benchmarks/bench_train.py [DATA_DIR] [--as-email] [--architecture cnn] [--set key=value ...]
                                     [--no-head | --head-only]

``head_*`` figures: a classification head over the frozen MiniLM encoder (architecture ``head``, what the
shared multi-model endpoint serves), trained and evaluated on the same split; ``head_gap_points`` is how far
its accuracy is below the main model's (positive: below).

``--as-email`` also wraps every text in a realistic HTML/plain support email (convclass.generator), cleans it
with the production cleaning (convclass.cleaning.clean_email) and trains/evaluates again on the cleaned
emails: the drop from ``accuracy`` to ``email_accuracy`` is what email noise costs.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from convclass.cleaning import CLEANING_VERSION, clean_email
from convclass.generator import BANKING77_DEFAULT_DIR, LabelledText, iter_emails, load_banking77
from convclass.tokenization import save_tokenizer, train_tokenizer
from convclass.training.config import parse_hyperparameters
from convclass.training.data import Split, TrainingData

LATENCY_CALLS = 100


def baseline(train: Split, test: Split) -> dict[str, float]:
    """TF-IDF word 1-2 + char 2-5 grams (sublinear tf) -> logistic regression, C=30."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline, make_union

    started = time.monotonic()
    pipeline = make_pipeline(
        make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=True),
        ),
        LogisticRegression(C=30, max_iter=2000),
    )
    pipeline.fit(list(train.texts), list(train.labels))
    seconds = time.monotonic() - started
    predicted = pipeline.predict(list(test.texts))
    return {
        "accuracy": float(accuracy_score(test.labels, predicted)),
        "macro_f1": float(f1_score(test.labels, predicted, average="macro")),
        "train_seconds": seconds,
    }


def as_emails(rows: list[LabelledText], seed: int) -> Split:
    """Wrap each text in a generated email and clean it exactly as preprocessing and serving do."""
    texts, labels = [], []
    for record, row in zip(iter_emails(examples=rows, seed=seed, duplicate_rate=0.0), rows, strict=True):
        cleaned = clean_email(record["subject"], record["body"], record["body_content_type"])
        texts.append(cleaned.text)
        labels.append(row.label)
    return Split(tuple(texts), tuple(labels))


def plain(rows: list[LabelledText]) -> Split:
    return Split(tuple(r.text for r in rows), tuple(r.label for r in rows))


def dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def serving_latency_ms(saved_model: Path, inputs: dict[str, np.ndarray]) -> dict[str, float]:
    """Median single-email latency through the SavedModel's serving signature (what TF Serving runs)."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    figures = {}
    width = int(inputs["attention_mask"][0].sum())
    for name, columns in (("latency_ms", inputs["input_ids"].shape[1]), ("latency_ms_trimmed", width)):
        one = {key: tf.constant(value[:1, :columns]) for key, value in inputs.items()}
        signature(**one)
        samples = []
        for _ in range(LATENCY_CALLS):
            started = time.perf_counter()
            signature(**one)
            samples.append((time.perf_counter() - started) * 1000)
        figures[name] = statistics.median(samples)
    return figures


def train_model(train: Split, test: Split, hyperparameters: dict[str, str], workdir: Path) -> dict[str, Any]:
    from convclass.tokenization import encode_texts, load_tokenizer
    from convclass.training.trainer import train_and_export

    config = parse_hyperparameters(hyperparameters)
    tokenizer_dir = workdir / "tokenizer"
    save_tokenizer(train_tokenizer(train.texts, vocab_size=8000), tokenizer_dir)
    data = TrainingData(
        train=train,
        validation=Split((), ()),
        test=test,
        labels=tuple(sorted(set(train.labels))),
        tokenizer_path=tokenizer_dir / "tokenizer.json",
        cleaning_version=CLEANING_VERSION,
    )
    started = time.monotonic()
    metrics = train_and_export(
        data, config, model_dir=workdir / "model", checkpoint_dir=workdir / "checkpoints"
    )
    seconds = time.monotonic() - started
    info = json.loads((workdir / "model" / "artifact.json").read_text())
    saved_model = workdir / "model" / "model" / str(info["model_version"])
    tokenizer = load_tokenizer(workdir / "model" / "tokenizer.json")
    latency = serving_latency_ms(saved_model, encode_texts(tokenizer, [test.texts[0]], info["max_length"]))
    return {
        "accuracy": metrics.accuracy,
        "macro_f1": metrics.macro_f1,
        "weighted_f1": metrics.weighted_f1,
        "ece": metrics.expected_calibration_error,
        "train_seconds": seconds,
        "epochs": metrics.epochs,
        "architecture": metrics.architecture,
        "max_length": info["max_length"],
        "model_mb": dir_mb(saved_model),
        **latency,
    }


def train_head(train: Split, test: Split, workdir: Path) -> dict[str, Any]:
    from convclass.training.trainer import train_and_export

    data = TrainingData(
        train=train,
        validation=Split((), ()),
        test=test,
        labels=tuple(sorted(set(train.labels))),
        tokenizer_path=workdir / "unused-tokenizer.json",  # the head uses the encoder's tokenizer
        cleaning_version=CLEANING_VERSION,
    )
    started = time.monotonic()
    metrics = train_and_export(
        data,
        parse_hyperparameters({"architecture": "head"}),
        model_dir=workdir / "model",
        checkpoint_dir=workdir / "checkpoints",
    )
    return {
        "head_accuracy": metrics.accuracy,
        "head_macro_f1": metrics.macro_f1,
        "head_train_seconds": time.monotonic() - started,
        "head_model_kb": (workdir / "model" / "head.npz").stat().st_size / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", nargs="?", type=Path, default=BANKING77_DEFAULT_DIR, help="Banking77 folder")
    parser.add_argument(
        "--as-email", action="store_true", help="also train/evaluate on generated, cleaned emails"
    )
    parser.add_argument("--architecture", help="override the default architecture (minilm | cnn)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="extra hyperparameter"
    )
    parser.add_argument(
        "--limit", type=int, help="use only the first N training rows (quick checks, not a result)"
    )
    heads = parser.add_mutually_exclusive_group()
    heads.add_argument("--no-head", action="store_true", help="skip the head model")
    heads.add_argument("--head-only", action="store_true", help="train only the baseline and the head model")
    args = parser.parse_args()

    try:
        train_rows = load_banking77(args.data, "train")
        test_rows = load_banking77(args.data, "test")
    except FileNotFoundError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.limit:
        train_rows = [
            train_rows[i] for i in np.random.default_rng(0).permutation(len(train_rows))[: args.limit]
        ]
    hyperparameters = dict(item.split("=", 1) for item in args.set)
    if args.architecture:
        hyperparameters["architecture"] = args.architecture

    result: dict[str, Any] = {
        "dataset": "banking77",
        "train_rows": len(train_rows),
        "test_rows": len(test_rows),
    }
    train, test = plain(train_rows), plain(test_rows)
    reference = baseline(train, test)
    print(f"baseline (TF-IDF + LogReg): {json.dumps(reference)}", flush=True)
    result.update({f"baseline_{key}": value for key, value in reference.items()})
    if not args.no_head:
        with tempfile.TemporaryDirectory(prefix="convclass-bench-") as scratch:
            head = train_head(train, test, Path(scratch))
        print(f"head: {json.dumps(head)}", flush=True)
        result.update(head)
    if args.head_only:
        result["cpu_count"] = os.cpu_count()
        print(json.dumps(result))
        return 0
    with tempfile.TemporaryDirectory(prefix="convclass-bench-") as scratch:
        model = train_model(train, test, hyperparameters, Path(scratch) / "plain")
    print(f"model: {json.dumps(model)}", flush=True)
    result.update(model)
    if "head_accuracy" in result:
        result["head_gap_points"] = 100 * (result["accuracy"] - result["head_accuracy"])

    if args.as_email:
        email_train, email_test = as_emails(train_rows, seed=1), as_emails(test_rows, seed=2)
        email_reference = baseline(email_train, email_test)
        with tempfile.TemporaryDirectory(prefix="convclass-bench-") as scratch:
            email = train_model(email_train, email_test, hyperparameters, Path(scratch) / "email")
        result.update({f"email_{key}": email[key] for key in ("accuracy", "macro_f1", "train_seconds")})
        result["email_drop_points"] = 100 * (result["accuracy"] - email["accuracy"])
        result["baseline_email_accuracy"] = email_reference["accuracy"]

    result["beats_baseline"] = result["accuracy"] > result["baseline_accuracy"]
    result["within_600s"] = result["train_seconds"] <= 600
    result["cpu_count"] = os.cpu_count()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
