"""Per-tenant ``head`` artifacts trained through the real training code on a tiny random encoder."""

from __future__ import annotations

from pathlib import Path

from tiny_bert import build_tiny_bert

from convclass.cleaning import CLEANING_VERSION, clean_email
from convclass.training.config import parse_hyperparameters
from convclass.training.data import Split, TrainingData
from convclass_local.generator import generate_emails

ENCODER_NAME = "tiny-bert-test"
MAX_LENGTH = 32


def cleaned_emails(n: int, seed: int, tenant: str) -> Split:
    """Generated support emails, cleaned as serving cleans them, labels prefixed by the tenant."""
    texts, labels = [], []
    for record in generate_emails(n, seed=seed):
        texts.append(clean_email(record["subject"], record["body"], record["body_content_type"]).text)
        labels.append(f"{tenant}.{record['labels']['intent']}")
    return Split(tuple(texts), tuple(labels))


def tiny_base_model(directory: Path) -> Path:
    return build_tiny_bert(directory, cleaned_emails(200, seed=99, tenant="corpus").texts)


def _known(split: Split, labels: tuple[str, ...]) -> Split:
    return Split(
        tuple(t for t, label in zip(split.texts, split.labels, strict=True) if label in labels),
        tuple(label for label in split.labels if label in labels),
    )


def tenant_data(base_model_dir: Path, tenant: str, *, seed: int, n: int, validation: bool) -> TrainingData:
    """Generated emails split 75/25 train/test, or 60/20/20 with a validation split."""
    split = cleaned_emails(n, seed=seed, tenant=tenant)
    cut = int(len(split) * (0.6 if validation else 0.75))
    middle = int(len(split) * 0.8) if validation else cut
    train = Split(split.texts[:cut], split.labels[:cut])
    labels = tuple(sorted(set(train.labels)))
    return TrainingData(
        train=train,
        validation=_known(Split(split.texts[cut:middle], split.labels[cut:middle]), labels),
        test=_known(Split(split.texts[middle:], split.labels[middle:]), labels),
        labels=labels,
        tokenizer_path=base_model_dir / "tokenizer.json",
        cleaning_version=CLEANING_VERSION,
        max_length=MAX_LENGTH,
    )


def train_head(
    base_model_dir: Path,
    model_dir: Path,
    tenant: str,
    *,
    seed: int = 1,
    n: int = 160,
    validation: bool = False,
    hyperparameters: dict[str, str] | None = None,
) -> Path:
    """Train one tenant's head with ``train_and_export`` (architecture=head) and return the artifact dir.

    ``validation``: hold out a validation split too, so the artifact carries a calibration and threshold.
    """
    from convclass.training.trainer import train_and_export

    data = tenant_data(base_model_dir, tenant, seed=seed, n=n, validation=validation)
    config = parse_hyperparameters(
        {"architecture": "head", "base_model_dir": str(base_model_dir), **(hyperparameters or {})}
    )
    train_and_export(data, config, model_dir=model_dir, checkpoint_dir=model_dir.parent / "checkpoints")
    return model_dir
