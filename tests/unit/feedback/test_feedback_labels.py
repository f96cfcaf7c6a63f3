"""Confirmed labels override the exported label of the same conversation in the next training set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from feedback_fixtures import confirmation

from convclass.feedback.labels import apply_confirmations, confirmed_labels
from convclass.records import ExportRecord

WHEN = datetime(2026, 11, 1, tzinfo=UTC)


def record(conversation: str, label: str | None, tenant: str = "acme") -> ExportRecord:
    return ExportRecord(
        conversation_id=conversation,
        tenant_id=tenant,
        created_at=WHEN,
        body="<p>text</p>",
        labels={"intent": label, "urgency": "low"} if label else {"urgency": "low"},
    )


def test_confirmed_labels_override_exported_ones_and_nothing_else() -> None:
    confirmed = confirmed_labels(
        [
            confirmation("c1", "refund", at=WHEN),
            confirmation("c1", "billing", at=WHEN + timedelta(hours=1)),  # final
            confirmation("c3", "delivery"),
            confirmation("c1", "spam", tenant="globex"),  # another tenant's conversation c1
            confirmation("c2", "spam", classifier="urgency"),  # another classifier
        ],
        tenant="acme",
        classifier="intent",
    )
    assert confirmed == {"c1": "billing", "c3": "delivery"}
    records = [
        record("c1", "refund"),
        record("c2", "refund"),
        record("c3", None),
        record("c1", "x", "globex"),
    ]
    out = list(apply_confirmations(records, confirmed, tenant="acme", label_field="intent"))
    assert [(r.tenant_id, r.conversation_id, r.labels) for r in out] == [
        ("acme", "c1", {"intent": "billing", "urgency": "low"}),
        ("acme", "c2", {"intent": "refund", "urgency": "low"}),
        ("acme", "c3", {"urgency": "low", "intent": "delivery"}),
        ("globex", "c1", {"intent": "x", "urgency": "low"}),
    ]
    assert out[1] is records[1]
    assert out[3] is records[3]
    assert [r.body for r in out] == [r.body for r in records]
