"""Train a tenant's classifier the way the pipeline does on any folder holding ``train.csv`` and ``test.csv``
(columns ``text,category``), beside a TF-IDF + logistic-regression baseline (``class_weight="balanced"``)
trained in the same run.

    python benchmarks/bench_train.py [DATA_DIR] [--architecture auto|head|linear|cnn|minilm]
                                     [--candidates head,linear,cnn,minilm] [--set key=value ...]
                                     [--validation-fraction 0.1] [--split-seed 0] [--limit N] [--as-email]
                                     [--embedding-cache DIR] [--serve-emails 1000]
                                     [--serve-threads default,1]

``DATA_DIR`` defaults to Banking77 (Casanueva et al., 2020; CC BY 4.0, github.com/PolyAI-LDN/
task-specific-datasets ``banking_data/``). A stratified ``--validation-fraction`` of ``train.csv`` (at least
one row of every label with two or more; ``--split-seed`` picks which) becomes the validation split: model
selection (``architecture=auto``, the default), the temperature and the auto-apply threshold are fitted there;
``test.csv`` only gives the reported figures.
Test rows of labels absent from ``train.csv`` are dropped (counted in ``test_rows_dropped``).

``--candidates`` sets the architectures ``auto`` tries (default: those that fit the data's size, so
``minilm`` only from 20,000 training rows): ``--candidates head,minilm`` measures the shared-encoder head and
the fine-tuned MiniLM in one run. ``--embedding-cache DIR`` keeps the frozen encoder's embeddings between
runs on the same texts (``$CONVCLASS_EMBEDDING_CACHE``); with a warm cache the head's ``train_seconds``
leave out the encoder pass (``embedding_cache_files_before``: 0 means it started cold).

``candidates`` lists every architecture tried with its validation and test macro-F1 and training seconds;
``ece`` is the test ECE after temperature scaling (``ece_uncalibrated`` before); ``auto_apply_*`` is the
threshold chosen on validation for ``target_precision`` and its test coverage and precision.

Serving latency of the selected model, through the serving code: the exported artifact is loaded the way
``python -m convclass.serving serve`` loads it (a ``head`` on the shared encoder exported with
``export_encoder`` as ``export-encoder`` writes it, any other model with ``load_classifier``), in serving
processes of their own (``serving_latency.py``), and up to ``--serve-emails`` test texts (a fixed random
sample) are classified one email per ``EmailClassifier.classify`` call after a warm-up: ``serve_ms_p50``,
``serve_ms_p99`` and ``serve_emails`` are for the first ``--serve-threads`` setting (TensorFlow's intra-op
threads, ``default`` = one per core, serving's default), ``serve_by_threads`` has every setting's figures,
measured in alternating slices of the same emails; ``load_average_1m`` is ``os.getloadavg()`` right after.
``serve_top1_accuracy`` is the served top label's accuracy on those emails (a check that serving reads the
model as training scored it). ``--serve-emails 0`` skips it.

``--as-email`` also wraps every text in a realistic HTML/plain support email (the sample generator), cleans it
with the production cleaning and trains/evaluates again: ``email_drop_points`` is what email noise costs.
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
from serving_latency import interleaved_latency, parse_threads, percentile

from convclass.cleaning import CLEANING_VERSION, clean_email
from convclass.tokenization import save_tokenizer, train_tokenizer
from convclass.training.config import parse_hyperparameters
from convclass.training.data import Split, TrainingData
from convclass.training.head import EMBEDDING_CACHE_ENV
from convclass_local.generator import BANKING77_DEFAULT_DIR, LabelledText, iter_emails, load_banking77

LATENCY_CALLS = 100
#: ``python -m convclass.serving export-encoder``'s default: the encoder a server holds (a head's max_length
#: rules what it is fed).
SERVING_ENCODER_MAX_LENGTH = 512


def baseline(train: Split, test: Split) -> dict[str, float]:
    """TF-IDF word 1-2 + char 2-5 grams (sublinear tf) -> logistic regression (C=30, balanced weights)."""
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
        LogisticRegression(C=30, max_iter=2000, class_weight="balanced"),
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


def serving_figures(
    model_dir: Path,
    test: Split,
    *,
    emails: int,
    thread_settings: list[str],
    base_model_dir: Path | None,
    workdir: Path,
) -> dict[str, Any]:
    """Single-email latency of the artifact in ``model_dir`` through the serving code (serving_latency.py)."""
    info = json.loads((model_dir / "artifact.json").read_text())
    encoder_dir = None
    if info["architecture"] == "head":
        from convclass.training.head import export_encoder
        from convclass.training.trainer import BASE_MODEL_NAME, default_base_model_dir

        encoder_dir = workdir / "encoder"
        export_encoder(
            base_model_dir or default_base_model_dir(),
            encoder_dir,
            name=BASE_MODEL_NAME,
            max_length=SERVING_ENCODER_MAX_LENGTH,
        )
    sample = np.random.default_rng(0).permutation(len(test))[:emails]
    texts = [test.texts[i] for i in sample]
    truth = [test.labels[i] for i in sample]
    settings = [parse_threads(s) for s in thread_settings]
    measured = interleaved_latency(
        model_dir, texts, encoder_dir=encoder_dir, settings=settings, workdir=workdir
    )
    load = os.getloadavg()[0]
    by_threads = {
        name: {
            "serve_ms_p50": percentile(m["ms"], 50),
            "serve_ms_p90": percentile(m["ms"], 90),
            "serve_ms_p99": percentile(m["ms"], 99),
            "serve_ms_max": max(m["ms"]),
            "serve_load_seconds": m["load_seconds"],
            "serve_top1_accuracy": float(np.mean([a == b for a, b in zip(m["labels"], truth, strict=True)])),
        }
        for name, m in zip(thread_settings, measured, strict=True)
    }
    first = by_threads[thread_settings[0]]
    return {
        "serve_ms_p50": first["serve_ms_p50"],
        "serve_ms_p99": first["serve_ms_p99"],
        "serve_emails": len(texts),
        "serve_threads": thread_settings[0],
        "serve_top1_accuracy": first["serve_top1_accuracy"],
        "serve_by_threads": by_threads,
        "load_average_1m": load,
    }


def split_validation(rows: list[LabelledText], fraction: float, seed: int) -> tuple[Split, Split]:
    """Stratified: ``fraction`` of each label's rows (at least one when it has two or more) to validation."""
    by_label: dict[str, list[LabelledText]] = {}
    for row in rows:
        by_label.setdefault(row.label, []).append(row)
    rng = np.random.default_rng(seed)
    train: list[LabelledText] = []
    validation: list[LabelledText] = []
    for label in sorted(by_label):
        members = [by_label[label][i] for i in rng.permutation(len(by_label[label]))]
        take = max(1, round(fraction * len(members))) if len(members) >= 2 else 0
        validation.extend(members[:take])
        train.extend(members[take:])
    return plain(train), plain(validation)


def train_model(
    train: Split,
    validation: Split,
    test: Split,
    hyperparameters: dict[str, str],
    workdir: Path,
    *,
    serve_emails: int = 0,
    serve_threads: list[str] | None = None,
) -> dict[str, Any]:
    from convclass.tokenization import encode_texts, load_tokenizer
    from convclass.training.trainer import train_and_export

    config = parse_hyperparameters(hyperparameters)
    tokenizer_dir = workdir / "tokenizer"
    save_tokenizer(train_tokenizer(train.texts, vocab_size=8000), tokenizer_dir)
    data = TrainingData(
        train=train,
        validation=validation,
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
    candidates = [
        {
            "architecture": c.architecture,
            "validation_macro_f1": c.validation_macro_f1,
            "test_macro_f1": c.macro_f1,
            "test_accuracy": c.accuracy,
            "train_seconds": c.training_seconds,
            "selected": c.selected,
        }
        for c in metrics.candidates
    ] or [
        {
            "architecture": metrics.architecture,
            "validation_macro_f1": metrics.validation_macro_f1,
            "test_macro_f1": metrics.macro_f1,
            "test_accuracy": metrics.accuracy,
            "train_seconds": seconds,
            "selected": True,
        }
    ]
    confidence = metrics.confidence
    truncation = metrics.truncation
    # The shared-encoder head (hosting issue) beside whatever else ran: its figures under their own names.
    head = next((c for c in candidates if c["architecture"] == "head"), None)
    result: dict[str, Any] = {
        "accuracy": metrics.accuracy,
        "macro_f1": metrics.macro_f1,
        "weighted_f1": metrics.weighted_f1,
        "selected_architecture": metrics.architecture,
        "candidates": candidates,
        "head_accuracy": head["test_accuracy"] if head else None,
        "head_train_seconds": head["train_seconds"] if head else None,
        "ece": confidence.ece if confidence else metrics.expected_calibration_error,
        "ece_uncalibrated": metrics.expected_calibration_error,
        "validation_ece_before": confidence.validation_ece_before if confidence else None,
        "validation_ece_after": confidence.validation_ece_after if confidence else None,
        "temperature": confidence.temperature if confidence else None,
        "target_precision": confidence.target_precision if confidence else None,
        "auto_apply_threshold": confidence.auto_apply_threshold if confidence else None,
        "auto_apply_coverage": confidence.coverage if confidence else 0.0,
        "auto_apply_precision": confidence.precision if confidence else 0.0,
        "train_seconds": seconds,
        "prior_correction_strength": metrics.prior_correction.strength if metrics.prior_correction else 0.0,
        # The selected head's token TF-IDF logits (convclass.heads): weight chosen on validation, 0 = none.
        "head_token_weight": (info.get("token_features") or {}).get("weight", 0.0)
        if info["architecture"] == "head"
        else None,
        "head_token_features": (info.get("token_features") or {}).get("n_features", 0)
        if info["architecture"] == "head"
        else None,
        "epochs": metrics.epochs,
        "max_length": info["max_length"],
        "max_chars": info["max_chars"],
        "truncation": info["truncation"],
        "long_text_share": truncation.long_text_share if truncation else None,
        "truncation_validation_macro_f1": truncation.validation_macro_f1 if truncation else None,
    }
    saved_model = workdir / "model" / "model" / str(info["model_version"])
    if saved_model.is_dir():  # heads have none: they run on the shared encoder (benchmarks/bench_hosting.py)
        tokenizer = load_tokenizer(workdir / "model" / "tokenizer.json")
        result["model_mb"] = dir_mb(saved_model)
        result.update(
            serving_latency_ms(
                saved_model, encode_texts(tokenizer, [test.texts[0]], info["max_length"], info["truncation"])
            )
        )
    else:
        result["model_kb"] = dir_mb(workdir / "model") * 1000
    if serve_emails > 0:
        result.update(
            serving_figures(
                workdir / "model",
                test,
                emails=serve_emails,
                thread_settings=serve_threads or ["default"],
                base_model_dir=Path(config.base_model_dir) if config.base_model_dir else None,
                workdir=workdir,
            )
        )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "data", nargs="?", type=Path, default=BANKING77_DEFAULT_DIR, help="folder with train.csv, test.csv"
    )
    parser.add_argument(
        "--as-email", action="store_true", help="also train/evaluate on generated, cleaned emails"
    )
    parser.add_argument(
        "--architecture",
        default="auto",
        help="auto (model selection) | head | linear | cnn | minilm",
    )
    parser.add_argument(
        "--candidates", help="auto only: comma-separated architectures to try (default: by data size)"
    )
    parser.add_argument(
        "--embedding-cache", type=Path, help=f"keep encoder embeddings here (${EMBEDDING_CACHE_ENV})"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="extra hyperparameter"
    )
    parser.add_argument("--validation-fraction", type=float, default=0.1, help="of train.csv, stratified")
    parser.add_argument(
        "--split-seed", type=int, default=0, help="which validation split (another seed: is a gain robust?)"
    )
    parser.add_argument(
        "--limit", type=int, help="use only the first N training rows (quick checks, not a result)"
    )
    parser.add_argument(
        "--serve-emails",
        type=int,
        default=1000,
        help="test emails classified singly through the serving code (0: no serving latency)",
    )
    parser.add_argument(
        "--serve-threads",
        default="default,1",
        help="comma-separated TensorFlow intra-op thread settings to serve with (default = one per core); "
        "the first gives serve_ms_*",
    )
    args = parser.parse_args()
    serve_threads = [s.strip() for s in args.serve_threads.split(",") if s.strip()]
    try:
        [parse_threads(s) for s in serve_threads]
    except ValueError as exc:
        parser.error(f"--serve-threads: {exc}")

    try:
        train_rows = load_banking77(args.data, "train")
        test_rows = load_banking77(args.data, "test")
    except (FileNotFoundError, KeyError) as exc:
        print(
            f"{args.data}: needs train.csv and test.csv with columns text,category ({exc})", file=sys.stderr
        )
        return 2
    if args.limit:
        train_rows = [
            train_rows[i] for i in np.random.default_rng(0).permutation(len(train_rows))[: args.limit]
        ]
    known = {row.label for row in train_rows}
    kept_test = [row for row in test_rows if row.label in known]
    hyperparameters = dict(item.split("=", 1) for item in args.set)
    hyperparameters["architecture"] = args.architecture
    if args.candidates:
        hyperparameters["candidates"] = args.candidates
    if args.embedding_cache:
        os.environ[EMBEDDING_CACHE_ENV] = str(args.embedding_cache)
    cache = os.environ.get(EMBEDDING_CACHE_ENV)
    cache_files_before = len(list(Path(cache).glob("*.npz"))) if cache and Path(cache).is_dir() else 0

    train, validation = split_validation(train_rows, args.validation_fraction, seed=args.split_seed)
    counts = sorted(train.labels.count(label) for label in known)
    result: dict[str, Any] = {
        "dataset": args.data.name,
        "split_seed": args.split_seed,
        "train_rows": len(train),
        "validation_rows": len(validation),
        "test_rows": len(kept_test),
        "test_rows_dropped": len(test_rows) - len(kept_test),
        "n_labels": len(known),
        "train_rows_per_label_min_median_max": [counts[0], counts[len(counts) // 2], counts[-1]],
    }
    test = plain(kept_test)
    # The baseline sees train + validation: every labelled row the model saw in some role.
    reference = baseline(Split(train.texts + validation.texts, train.labels + validation.labels), test)
    print(f"baseline (TF-IDF + LogReg, balanced): {json.dumps(reference)}", flush=True)
    result.update({f"baseline_{key}": value for key, value in reference.items()})
    with tempfile.TemporaryDirectory(prefix="convclass-bench-") as scratch:
        model = train_model(
            train,
            validation,
            test,
            hyperparameters,
            Path(scratch) / "plain",
            serve_emails=args.serve_emails,
            serve_threads=serve_threads,
        )
    print(f"model: {json.dumps(model)}", flush=True)
    result.update(model)

    if args.as_email:
        email_rows = [LabelledText(t, label) for t, label in zip(train.texts, train.labels, strict=True)]
        val_rows = [
            LabelledText(t, label) for t, label in zip(validation.texts, validation.labels, strict=True)
        ]
        email_train, email_val = as_emails(email_rows, seed=1), as_emails(val_rows, seed=3)
        email_test = as_emails(kept_test, seed=2)
        email_reference = baseline(email_train, email_test)
        with tempfile.TemporaryDirectory(prefix="convclass-bench-") as scratch:
            email = train_model(email_train, email_val, email_test, hyperparameters, Path(scratch) / "email")
        result.update({f"email_{key}": email[key] for key in ("accuracy", "macro_f1", "train_seconds")})
        result["email_drop_points"] = 100 * (result["accuracy"] - email["accuracy"])
        result["baseline_email_accuracy"] = email_reference["accuracy"]

    result["embedding_cache"] = cache
    result["embedding_cache_files_before"] = cache_files_before
    result["beats_baseline"] = result["accuracy"] > result["baseline_accuracy"]
    result["macro_f1_gain_points"] = 100 * (result["macro_f1"] - result["baseline_macro_f1"])
    result["within_600s"] = result["train_seconds"] <= 600
    result["cpu_count"] = os.cpu_count()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
