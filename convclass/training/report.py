"""The human report in ``report/``: training curves, confusion matrix, and a short Markdown + HTML summary.

Only aggregate figures and label names appear; never an email's text.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: training containers have no display

import matplotlib.pyplot as plt
import numpy as np

from convclass.artifacts import ArtifactInfo, ModelMetrics

WORST_LABELS = 10
#: Below this many held-out emails a label's F1 moves by 10+ points with one email: not to be trusted.
FEW_HELD_OUT = 10


def write_report(
    directory: Path, *, history: Sequence[dict[str, float]], metrics: ModelMetrics, info: ArtifactInfo
) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = [
        _training_curves(directory / "training_curves.png", history),
        _confusion_matrix(directory / "confusion_matrix.png", metrics),
    ]
    markdown = _summary_markdown(metrics, info, history)
    (directory / "summary.md").write_text(markdown, encoding="utf-8")
    (directory / "summary.html").write_text(_summary_html(metrics, info, history), encoding="utf-8")
    return [*paths, directory / "summary.md", directory / "summary.html"]


def _training_curves(path: Path, history: Sequence[dict[str, float]]) -> Path:
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [int(row["epoch"]) for row in history]
    for key, axis in (("loss", loss_ax), ("accuracy", acc_ax)):
        for prefix, style in (("", "-o"), ("val_", "--s")):
            values = [row.get(prefix + key) for row in history]
            if any(v is not None for v in values):
                axis.plot(epochs, [np.nan if v is None else v for v in values], style, label=prefix + key)
        axis.set_xlabel("epoch")
        axis.set_title(key)
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _confusion_matrix(path: Path, metrics: ModelMetrics) -> Path:
    matrix = np.asarray(metrics.confusion_matrix, dtype=np.float64)
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    n = len(metrics.labels)
    size = min(24.0, max(5.0, 0.22 * n + 3))
    fig, axis = plt.subplots(figsize=(size, size))
    image = axis.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"confusion matrix (row-normalised, {metrics.evaluated_on} split)")
    if n <= 100:
        font = max(4, min(9, int(300 / max(n, 1))))
        axis.set_xticks(range(n), metrics.labels, rotation=90, fontsize=font)
        axis.set_yticks(range(n), metrics.labels, fontsize=font)
    fig.colorbar(image, ax=axis, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _worst(metrics: ModelMetrics) -> list[tuple[str, float, int]]:
    rows = [(label, m.f1, m.support) for label, m in metrics.per_label.items() if m.support > 0]
    return sorted(rows, key=lambda row: (row[1], row[0]))[:WORST_LABELS]


def _headline(metrics: ModelMetrics, info: ArtifactInfo) -> list[tuple[str, str]]:
    return [
        ("architecture", info.architecture + (f" (from {info.base_model})" if info.base_model else "")),
        (f"{metrics.evaluated_on} accuracy", f"{metrics.accuracy:.4f}"),
        ("macro-F1", f"{metrics.macro_f1:.4f}"),
        ("weighted-F1", f"{metrics.weighted_f1:.4f}"),
        ("expected calibration error", f"{metrics.expected_calibration_error:.4f}"),
        ("labels", str(metrics.data.n_labels)),
        (
            "train / validation / test rows",
            f"{metrics.data.train} / {metrics.data.validation} / {metrics.data.test}",
        ),
        ("epochs", str(metrics.epochs)),
        ("training seconds", f"{metrics.training_seconds:.1f}"),
        ("cleaning version", info.cleaning_version),
        ("max length (tokens)", str(info.max_length)),
        *_confidence_rows(metrics),
        _few_rows(metrics),
    ]


def _few_rows(metrics: ModelMetrics) -> tuple[str, str]:
    few = sorted(label for label, m in metrics.per_label.items() if m.support < FEW_HELD_OUT)
    if not few:
        return (f"labels with under {FEW_HELD_OUT} {metrics.evaluated_on} emails", "none")
    shown = ", ".join(few[:WORST_LABELS]) + (
        f" and {len(few) - WORST_LABELS} more" if len(few) > WORST_LABELS else ""
    )
    return (
        f"labels with under {FEW_HELD_OUT} {metrics.evaluated_on} emails",
        f"{len(few)} ({shown}): too few to trust their figures; label more of them",
    )


def _confidence_rows(metrics: ModelMetrics) -> list[tuple[str, str]]:
    figures = metrics.confidence
    if figures is None:
        return [("auto-apply", "never (no validation split to fit a threshold on)")]
    if figures.auto_apply_threshold is None:
        applies = f"never (no confidence reached {figures.target_precision:.0%} precision on validation)"
    else:
        applies = (
            f"confidence >= {figures.auto_apply_threshold:.3f}: {figures.coverage:.1%} of "
            f"{metrics.evaluated_on} emails, {figures.precision:.1%} of them right "
            f"(target {figures.target_precision:.0%})"
        )
    return [
        ("temperature (calibration)", f"{figures.temperature:.3f}"),
        (
            "validation ECE before / after",
            f"{figures.validation_ece_before:.4f} / {figures.validation_ece_after:.4f}",
        ),
        (f"{metrics.evaluated_on} ECE after calibration", f"{figures.ece:.4f}"),
        ("auto-apply", applies),
    ]


def write_selection(path: Path, metrics: ModelMetrics) -> Path:
    """``report/selection.md`` (architecture=auto): every candidate's figures and which one was kept."""
    split = metrics.evaluated_on
    lines = [
        "# Model selection",
        "",
        "Chosen by validation macro-F1 (ties within half a point go to the cheaper to serve); "
        f"{split} figures are reported, never used to choose.",
        "",
        f"| architecture | validation macro-F1 | {split} macro-F1 | {split} accuracy "
        "| training seconds | selected |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {c.architecture} | {c.validation_macro_f1:.4f} | {c.macro_f1:.4f} | {c.accuracy:.4f} "
        f"| {c.training_seconds:.1f} | {'yes' if c.selected else ''} |"
        for c in metrics.candidates
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _summary_markdown(metrics: ModelMetrics, info: ArtifactInfo, history: Sequence[dict[str, float]]) -> str:
    lines = ["# convclass model report", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in _headline(metrics, info)]
    lines += ["", "## Weakest labels (F1)", "", "| label | F1 | support |", "|---|---|---|"]
    lines += [f"| {label} | {f1:.3f} | {support} |" for label, f1, support in _worst(metrics)]
    lines += [
        "",
        "## Epochs",
        "",
        "| epoch | loss | accuracy | val_loss | val_accuracy |",
        "|---|---|---|---|---|",
    ]
    for row in history:
        cells = [_fmt(row.get(key)) for key in ("loss", "accuracy", "val_loss", "val_accuracy")]
        lines.append(f"| {int(row['epoch'])} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "![training curves](training_curves.png)",
        "",
        "![confusion matrix](confusion_matrix.png)",
        "",
    ]
    return "\n".join(lines)


def _summary_html(metrics: ModelMetrics, info: ArtifactInfo, history: Sequence[dict[str, float]]) -> str:
    esc = html.escape
    head = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in _headline(metrics, info))
    worst = "".join(
        f"<tr><td>{esc(label)}</td><td>{f1:.3f}</td><td>{support}</td></tr>"
        for label, f1, support in _worst(metrics)
    )
    epochs = "".join(
        f"<tr><td>{int(row['epoch'])}</td>"
        + "".join(f"<td>{_fmt(row.get(k))}</td>" for k in ("loss", "accuracy", "val_loss", "val_accuracy"))
        + "</tr>"
        for row in history
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>convclass model report</title></head><body>"
        f"<h1>convclass model report</h1><table>{head}</table>"
        "<h2>Weakest labels (F1)</h2><table><tr><th>label</th><th>F1</th><th>support</th></tr>"
        f"{worst}</table>"
        "<h2>Epochs</h2><table><tr><th>epoch</th><th>loss</th><th>accuracy</th><th>val_loss</th>"
        f"<th>val_accuracy</th></tr>{epochs}</table>"
        "<img src='training_curves.png' alt='training curves'>"
        "<img src='confusion_matrix.png' alt='confusion matrix'></body></html>\n"
    )


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
