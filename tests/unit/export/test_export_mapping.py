"""Document → export record: the default model, overrides, odd encodings and every skip reason."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from convclass.errors import InsufficientData, InvalidInput
from convclass.export.files import read_lines
from convclass.export.manifest import ExportCounts, Watermark
from convclass.export.mapping import (
    DocumentMapping,
    FilterReason,
    Normalized,
    Repair,
    Skipped,
    SkipReason,
    conversation_document,
    normalize_document,
    normalize_record_row,
)
from convclass.export.request import WindowSpec
from convclass.export.run import resolve_window
from convclass.export.settings import SourceSettings, load_source_settings, redact_uri
from convclass.export.window import EPOCH, parse_timestamp

T0 = datetime(2026, 2, 1, 9, 30, tzinfo=UTC)
MAPPING = DocumentMapping()


def doc(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "_id": "c-1",
        "tenant_id": "acme",
        "created_at": T0,
        "updated_at": T0 + timedelta(hours=2),
        "labels": {"intent": "card_lost", "priority": "p2"},
        "messages": [
            {"direction": "outbound", "sent_at": T0 - timedelta(minutes=5), "body": "Hello from support"},
            {"direction": "inbound", "sent_at": T0, "subject": "Lost card", "body": "<p>I lost my card</p>",
             "content_type": "text/html; charset=utf-8"},
            {"direction": "inbound", "sent_at": T0 + timedelta(hours=1), "body": "Any news?"},
        ],
    }  # fmt: skip
    document.update(overrides)
    return document


def normalize(document: dict[str, Any], mapping: DocumentMapping = MAPPING) -> Normalized | Skipped:
    return normalize_document(document, mapping, tenant="acme", label_field="intent")


def test_default_model_gives_the_first_inbound_email_and_only_the_requested_label() -> None:
    result = normalize(doc())
    assert isinstance(result, Normalized)
    record = result.record
    assert (record.conversation_id, record.subject, record.body) == (
        "c-1",
        "Lost card",
        "<p>I lost my card</p>",
    )
    assert record.body_content_type == "text/html"
    assert record.labels == {"intent": "card_lost"}
    assert record.created_at == T0
    assert result.changed_at == T0 + timedelta(hours=2)
    assert result.repairs == ()


def test_unordered_messages_pick_the_earliest_inbound() -> None:
    messages = [
        {"direction": "inbound", "sent_at": T0 + timedelta(hours=1), "body": "later"},
        {"direction": "inbound", "sent_at": T0, "body": "first"},
    ]
    ordered = normalize(doc(messages=messages))
    unordered = normalize(doc(messages=messages), DocumentMapping(messages_in_order=False))
    assert isinstance(ordered, Normalized)
    assert ordered.record.body == "later"
    assert isinstance(unordered, Normalized)
    assert unordered.record.body == "first"


def test_overridden_field_names_and_flat_documents() -> None:
    mapping = DocumentMapping(
        id_field="ticket.number",
        tenant_field=None,
        time_field="modified",
        labels_field="custom",
        messages_field=None,
        body_field="html",
        subject_field="title",
        content_type_field="mime",
        created_field="opened",
    )
    flat = {"ticket": {"number": 42}, "modified": "2026-02-01T10:00:00Z", "opened": 1767225600000,
            "custom": {"intent": 7}, "title": "Hi", "html": "plain words", "mime": None}  # fmt: skip
    result = normalize(flat, mapping)
    assert isinstance(result, Normalized)
    assert result.record.conversation_id == "42"
    assert result.record.labels == {"intent": "7"}
    assert result.record.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert result.record.body_content_type == "text/plain"
    assert Repair.CONTENT_TYPE_GUESSED in result.repairs
    round_trip = conversation_document(result.record.model_dump(), mapping)
    again = normalize(round_trip, mapping)
    assert isinstance(again, Normalized)
    assert again.record.body == "plain words"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"_id": None}, SkipReason.MISSING_ID),
        ({"_id": {"nested": 1}}, SkipReason.MALFORMED_ID),
        ({"_id": "x" * 300}, SkipReason.MALFORMED_ID),
        ({"updated_at": None}, SkipReason.MISSING_TIMESTAMP),
        ({"updated_at": "yesterday-ish"}, SkipReason.MALFORMED_TIMESTAMP),
        ({"labels": {"priority": "p1"}}, SkipReason.MISSING_LABEL),
        ({"labels": {"intent": "   "}}, SkipReason.MISSING_LABEL),
        ({"labels": {"intent": True}}, SkipReason.MALFORMED_LABEL),
        ({"labels": {"intent": "y" * 300}}, SkipReason.MALFORMED_LABEL),
        ({"messages": "not a list"}, SkipReason.MALFORMED_MESSAGES),
        ({"messages": [{"direction": "outbound", "body": "x"}]}, SkipReason.NO_INBOUND_EMAIL),
        ({"messages": [{"direction": "inbound"}]}, SkipReason.MISSING_BODY),
        ({"messages": [{"direction": "inbound", "body": 12}]}, SkipReason.MALFORMED_BODY),
        ({"messages": [{"direction": "inbound", "body": "\n \t"}]}, SkipReason.EMPTY_BODY),
        ({"messages": [{"direction": "inbound", "body": "z" * 101}]}, SkipReason.BODY_TOO_LARGE),
        ({"messages": [{"direction": "inbound", "body": b"z" * 500}]}, SkipReason.BODY_TOO_LARGE),
        (
            {"messages": [{"direction": "inbound", "body": "ok", "sent_at": "never"}]},
            SkipReason.MALFORMED_TIMESTAMP,
        ),
        ({"tenant_id": "globex"}, SkipReason.TENANT_MISMATCH),
    ],
)
def test_unusable_documents_map_to_a_reason(overrides: dict[str, Any], reason: SkipReason) -> None:
    result = normalize(doc(**overrides), DocumentMapping(max_body_chars=100))
    assert result == Skipped(reason)


def test_not_a_document_is_counted_not_raised() -> None:
    assert normalize_document(["a"], MAPPING, tenant="acme", label_field="intent") == Skipped(  # type: ignore[arg-type]
        SkipReason.MALFORMED_DOCUMENT
    )


@pytest.mark.parametrize(
    ("raw", "content_type", "expected", "repairs"),
    [
        ("Grüße".encode("iso-8859-1"), "text/plain; charset=iso-8859-1", "Grüße", ()),
        (
            b'<meta charset="windows-1252"><p>\x93quoted\x94</p>',
            None,
            '<meta charset="windows-1252"><p>“quoted”</p>',
            (),
        ),
        ("日本語のメール".encode(), "text/plain", "日本語のメール", ()),
        (b"caf\xe9 \x81", "text/plain; charset=utf-8", "café \ufffd", (Repair.CHARSET_FALLBACK,)),
        (b"ok", "text/plain; charset=no-such-charset", "ok", ()),
    ],
)
def test_body_bytes_in_odd_encodings(
    raw: bytes, content_type: str | None, expected: str, repairs: tuple[Repair, ...]
) -> None:
    message = {"direction": "inbound", "body": raw, "content_type": content_type}
    result = normalize(doc(messages=[message]))
    assert isinstance(result, Normalized)
    assert result.record.body == expected
    assert tuple(r for r in result.repairs if r is not Repair.CONTENT_TYPE_GUESSED) == repairs


def test_subject_repairs() -> None:
    long = normalize(
        doc(
            messages=[
                {"direction": "inbound", "body": "b", "subject": "s" * 2000, "content_type": "text/plain"}
            ]
        )
    )
    odd = normalize(
        doc(messages=[{"direction": "inbound", "body": "b", "subject": ["x"], "content_type": "text/plain"}])
    )
    assert isinstance(long, Normalized)
    assert len(long.record.subject or "") == 998
    assert long.repairs == (Repair.SUBJECT_TRUNCATED,)
    assert isinstance(odd, Normalized)
    assert odd.record.subject is None
    assert odd.repairs == (Repair.SUBJECT_DROPPED,)


def test_counts_account_for_every_document() -> None:
    counts = ExportCounts()
    items: list[Normalized | Skipped] = [
        normalize(doc()),
        Skipped(SkipReason.EMPTY_BODY),
        Skipped(SkipReason.EMPTY_BODY),
        Skipped(FilterReason.OUT_OF_WINDOW),
    ]
    for item in items:
        counts.count(item)
    other = ExportCounts()
    other.count(Skipped(SkipReason.MALFORMED_JSON))
    counts.merge(other)
    assert (counts.read, counts.exported, counts.skipped_total) == (5, 1, 3)
    assert counts.filtered == {FilterReason.OUT_OF_WINDOW: 1}
    assert counts.accounted


def test_read_lines_caps_oversized_lines_without_loading_them() -> None:
    data = b'{"a": 1}\n' + b"x" * 5000 + b"\n\n" + b'{"b": 2}\r\n' + b"y" * 3000
    assert list(read_lines(io.BytesIO(data), max_line_bytes=1000)) == [b'{"a": 1}', None, b'{"b": 2}\r', None]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-02-01T10:00:00Z", datetime(2026, 2, 1, 10, tzinfo=UTC)),
        ("2026-02-01T12:00:00+02:00", datetime(2026, 2, 1, 10, tzinfo=UTC)),
        (datetime(2026, 2, 1, 10), datetime(2026, 2, 1, 10, tzinfo=UTC)),
        (1769940000000, datetime(2026, 2, 1, 10, tzinfo=UTC)),
        (True, None),
        ("soon", None),
        (10**20, None),
        ({"$date": 1}, None),
    ],
)
def test_parse_timestamp(value: object, expected: datetime | None) -> None:
    assert parse_timestamp(value) == expected


def test_redact_uri_keeps_hosts_and_drops_credentials_and_options() -> None:
    assert redact_uri("mongodb://u:p%40ss@h1:27017,h2:27017/db?replicaSet=rs&authSource=admin") == (
        "mongodb://h1:27017,h2:27017/db"
    )
    assert redact_uri("https://admin:pw@search.example.com:443") == "https://search.example.com:443"
    assert redact_uri("no scheme at all") == "<unparseable uri>"


def test_resolve_window_incremental_full_and_empty() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    settle = timedelta(minutes=5)
    mark = Watermark(value=datetime(2026, 2, 1, tzinfo=UTC), run_id="r", manifest_key="k", written_at=now)
    first = resolve_window("incremental", WindowSpec(), None, now, settle)
    assert (first.start, first.end) == (EPOCH, now - settle)
    assert resolve_window("incremental", WindowSpec(), mark, now, settle).start == mark.value
    assert resolve_window("full", WindowSpec(), mark, now, settle).start == EPOCH
    with pytest.raises(InsufficientData):
        resolve_window("incremental", WindowSpec(end=datetime(2026, 1, 1, tzinfo=UTC)), mark, now, settle)


def test_settings_from_environment_and_invalid_overrides() -> None:
    settings = load_source_settings(
        "acme",
        environ={
            "CONVCLASS_MONGODB_URI": "mongodb://u:secret@h/db",
            "CONVCLASS_MONGODB_DATABASE": "support",
            "CONVCLASS_OPENSEARCH_HOSTS": "https://a:9200, https://b:9200",
            "CONVCLASS_EXPORT_MAPPING": '{"labels_field": "tags", "messages_in_order": false}',
        },
    )
    assert settings.mongodb is not None
    assert "secret" not in repr(settings)
    assert settings.opensearch is not None
    assert settings.opensearch.hosts == [
        "https://a:9200",
        "https://b:9200",
    ]
    mapping = settings.document_mapping(DocumentMapping())
    assert mapping.labels_field == "tags"
    assert not mapping.messages_in_order
    with pytest.raises(InvalidInput, match="mapping"):
        SourceSettings(mapping={"labels_field": "bad field $"}).document_mapping(DocumentMapping())
    with pytest.raises(InvalidInput, match="JSON"):
        load_source_settings("acme", environ={"CONVCLASS_EXPORT_MAPPING": "{"})
    with pytest.raises(InvalidInput, match=r"mongodb\.database"):
        load_source_settings("acme", environ={"CONVCLASS_MONGODB_URI": "mongodb://h"})


def test_dotted_label_fields_are_nested_in_documents_and_flat_in_files() -> None:
    nested = normalize_document(
        doc(labels={"triage": {"team": "cards"}}), MAPPING, tenant="acme", label_field="triage.team"
    )
    assert isinstance(nested, Normalized)
    assert nested.record.labels == {"triage.team": "cards"}
    row = {"conversation_id": "f-1", "created_at": "2026-02-01T00:00:00Z", "body": "hi",
           "labels": {"triage.team": "cards"}}  # fmt: skip
    flat = normalize_record_row(row, tenant="acme", label_field="triage.team", max_body_chars=100)
    assert isinstance(flat, Normalized)
    assert flat.record.labels == {"triage.team": "cards"}
    assert flat.record.body_content_type == "text/plain"
