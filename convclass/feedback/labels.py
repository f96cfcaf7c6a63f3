"""Confirmed labels override the exported label of the same conversation in the next training set."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from convclass.feedback.events import LabelConfirmed
from convclass.feedback.metrics import final_labels
from convclass.records import ExportRecord


def confirmed_labels(confirmations: Iterable[LabelConfirmed], tenant: str, classifier: str) -> dict[str, str]:
    """Conversation id → final confirmed label, for one tenant's classifier only."""
    mine = [c for c in confirmations if c.tenant == tenant and c.classifier == classifier]
    return {cid: item.label for cid, item in final_labels(mine).items()}


def apply_confirmations(
    records: Iterable[ExportRecord], confirmed: Mapping[str, str], *, tenant: str, label_field: str
) -> Iterator[ExportRecord]:
    """``records`` with ``labels[label_field]`` replaced by the confirmed label of their conversation.

    Records of another tenant pass through untouched (preprocessing drops them), as do conversations
    nobody confirmed. A confirmation can also label a conversation the export had no label for.
    """
    for record in records:
        label = final_label(record, confirmed, label_field) if record.tenant_id == tenant else None
        if label is None or record.labels.get(label_field) == label:
            yield record
            continue
        yield record.model_copy(update={"labels": {**record.labels, label_field: label}})


def final_label(record: ExportRecord, confirmed: Mapping[str, str], label_field: str) -> str | None:
    """The label a training set uses for ``record``: an agent's confirmation wins over the exported label."""
    return confirmed.get(record.conversation_id) or record.labels.get(label_field)
