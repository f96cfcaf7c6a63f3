"""From a stored conversation document to an export record, or to a counted reason why not.

The default document model (one document per conversation, messages embedded in arrival order)::

    {
      "_id": "c-1842",                        # conversation id (ObjectId, string or number)
      "tenant_id": "acme",                    # owner (tenant_field=None: one store per tenant)
      "created_at": ISODate(...),
      "updated_at": ISODate(...),             # change time: windows, incremental exports and ordering use it
      "labels": {"intent": "card_lost"},      # one entry per label field an agent or workflow set
      "deleted_at": ISODate(...),             # set (soft delete) when the conversation was deleted
      "messages": [
        {"direction": "inbound", "sent_at": ISODate(...), "subject": "...", "body": "<html>...",
         "content_type": "text/html; charset=utf-8"},
        {"direction": "outbound", ...}
      ]
    }

Every name above is a field of :class:`DocumentMapping`, so a deployment whose store looks different overrides
names in configuration instead of changing code. With ``messages_field=None`` the document itself is the first
inbound email (a flat model, common in search indices).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from convclass.cleaning import decode_bytes
from convclass.export.window import parse_timestamp
from convclass.records import BodyContentType, ExportRecord

_FIELD_PATH = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
#: What an export record keeps of a subject (RFC 5322 line limit); cleaning later keeps less (its own limit).
MAX_EXPORTED_SUBJECT_CHARS = 998
MAX_CONVERSATION_ID_CHARS = 256


class SkipReason(StrEnum):
    """Why a document read from the source produced no export record. Counted per reason in the manifest."""

    MISSING_ID = "missing_id"
    MALFORMED_ID = "malformed_id"
    MISSING_TIMESTAMP = "missing_timestamp"
    MALFORMED_TIMESTAMP = "malformed_timestamp"
    NO_INBOUND_EMAIL = "no_inbound_email"
    MALFORMED_MESSAGES = "malformed_messages"
    MISSING_BODY = "missing_body"
    EMPTY_BODY = "empty_body"
    MALFORMED_BODY = "malformed_body"
    BODY_TOO_LARGE = "body_too_large"
    DOCUMENT_TOO_LARGE = "document_too_large"
    MISSING_LABEL = "missing_label"
    MALFORMED_LABEL = "malformed_label"
    MALFORMED_DOCUMENT = "malformed_document"
    MALFORMED_JSON = "malformed_json"
    UNREADABLE_FILE = "unreadable_file"
    TENANT_MISMATCH = "tenant_mismatch"
    INVALID_RECORD = "invalid_record"


class FilterReason(StrEnum):
    """Why a row of a dropped file is out of scope (what a database filters server-side). Not an error."""

    OUT_OF_WINDOW = "out_of_window"
    NO_LABEL = "no_label"
    OTHER_TENANT = "other_tenant"


class Repair(StrEnum):
    """A record that was exported after a lossless-enough repair, counted so a drift in data quality shows."""

    CHARSET_FALLBACK = "charset_fallback"
    INVALID_UNICODE_REPLACED = "invalid_unicode_replaced"
    SUBJECT_TRUNCATED = "subject_truncated"
    SUBJECT_DROPPED = "subject_dropped"
    CONTENT_TYPE_GUESSED = "content_type_guessed"


@dataclass(frozen=True, slots=True)
class Skipped:
    """A document that was read but not exported (``reason`` is a SkipReason or a FilterReason)."""

    reason: SkipReason | FilterReason


@dataclass(frozen=True, slots=True)
class Normalized:
    """An export record, its change time and the repairs it needed."""

    record: ExportRecord
    changed_at: datetime
    repairs: tuple[Repair, ...] = ()


class DocumentMapping(BaseModel):
    """Where the fields of a conversation live in a deployment's document store (dotted paths allowed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id_field: str = Field(default="_id", pattern=_FIELD_PATH)
    tenant_field: str | None = Field(default="tenant_id", pattern=_FIELD_PATH)
    time_field: str = Field(default="updated_at", pattern=_FIELD_PATH)
    created_field: str = Field(default="created_at", pattern=_FIELD_PATH)
    labels_field: str = Field(default="labels", pattern=_FIELD_PATH)
    messages_field: str | None = Field(default="messages", pattern=_FIELD_PATH)
    messages_in_order: bool = True
    direction_field: str = Field(default="direction", pattern=_FIELD_PATH)
    inbound_values: tuple[str, ...] = ("inbound",)
    sent_at_field: str = Field(default="sent_at", pattern=_FIELD_PATH)
    subject_field: str = Field(default="subject", pattern=_FIELD_PATH)
    body_field: str = Field(default="body", pattern=_FIELD_PATH)
    content_type_field: str = Field(default="content_type", pattern=_FIELD_PATH)
    max_body_chars: int = Field(default=1_000_000, ge=1)
    #: A conversation with a value here (anything but null/false) was deleted: it is exported as a tombstone
    #: so that the classifier's training history drops it. ``None``: the store never soft-deletes.
    deleted_field: str | None = Field(default="deleted_at", pattern=_FIELD_PATH)

    def label_path(self, label_field: str) -> str:
        return f"{self.labels_field}.{label_field}"

    def message_fields(self) -> tuple[str, ...]:
        return (
            self.direction_field,
            self.sent_at_field,
            self.subject_field,
            self.body_field,
            self.content_type_field,
        )


_MISSING = object()


def get_path(document: Mapping[str, Any], path: str) -> Any:
    """Value at a dotted ``path``, or the ``_MISSING`` sentinel."""
    current: Any = document
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


def is_missing(value: object) -> bool:
    return value is _MISSING or value is None


_CHARSET_RE = re.compile(rb"""charset\s*=\s*["']?([A-Za-z0-9_.:-]{1,40})""", re.IGNORECASE)
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_TAG_RE = re.compile(r"<\s*(html|body|div|p|br|span|table|head|meta|a)\b", re.IGNORECASE)


def _declared_charset(content_type: str | None, head: bytes) -> str | None:
    """Charset from the content type or an HTML ``<meta charset>`` near the start of the body."""
    for source in (content_type.encode("ascii", "ignore") if content_type else b"", head[:2048]):
        match = _CHARSET_RE.search(source)
        if match:
            name = match.group(1).decode("ascii")
            try:
                return codecs.lookup(name).name
            except LookupError:
                continue
    return None


def read_body_bytes(raw: bytes, content_type: str | None) -> tuple[str, tuple[Repair, ...]]:
    """Body bytes as text (``convclass.cleaning.decode_bytes``, with the charset the content type or an HTML
    ``<meta charset>`` declares); bytes no charset decodes are replaced and counted as a repair."""
    text, issues = decode_bytes(raw, _declared_charset(content_type, raw))
    return text, (Repair.CHARSET_FALLBACK,) if issues else ()


def scrub_text(text: str) -> tuple[str, bool]:
    """Replace lone surrogates (fine in Python/JSON, invalid in UTF-8/Parquet); returns (text, changed)."""
    if text.isascii():
        return text, False
    repaired, count = _SURROGATE_RE.subn("\ufffd", text)
    return repaired, count > 0


def content_type_of(value: object, body: str) -> tuple[BodyContentType, bool]:
    """Map a stored MIME type onto the record's two body kinds; guess from the body when absent or unknown."""
    if isinstance(value, str):
        base = value.split(";", 1)[0].strip().lower()
        if base == "text/html":
            return "text/html", False
        if base == "text/plain":
            return "text/plain", False
    return ("text/html" if _TAG_RE.search(body[:4096]) else "text/plain"), True


def _first_inbound(messages: object, mapping: DocumentMapping) -> Mapping[str, Any] | SkipReason:
    if is_missing(messages):
        return SkipReason.NO_INBOUND_EMAIL
    if not isinstance(messages, list):
        return SkipReason.MALFORMED_MESSAGES
    inbound = [
        m
        for m in messages
        if isinstance(m, Mapping) and get_path(m, mapping.direction_field) in mapping.inbound_values
    ]
    if not inbound:
        return SkipReason.NO_INBOUND_EMAIL
    if mapping.messages_in_order or len(inbound) == 1:
        return inbound[0]
    dated = [(parse_timestamp(get_path(m, mapping.sent_at_field)), i) for i, m in enumerate(inbound)]
    known = [(moment, i) for moment, i in dated if moment is not None]
    return inbound[min(known)[1]] if known else inbound[0]


def _label_value(document: Mapping[str, Any], mapping: DocumentMapping, label_field: str) -> str | SkipReason:
    return _label_text(get_path(document, mapping.label_path(label_field)))


def _label_text(value: object) -> str | SkipReason:
    if is_missing(value):
        return SkipReason.MISSING_LABEL
    if isinstance(value, bool) or not isinstance(value, str | int):
        return SkipReason.MALFORMED_LABEL
    text = str(value).strip()
    if not text:
        return SkipReason.MISSING_LABEL
    if len(text) > 256:
        return SkipReason.MALFORMED_LABEL
    return text


def normalize_document(
    document: Mapping[str, Any], mapping: DocumentMapping, *, tenant: str, label_field: str
) -> Normalized | Skipped:
    """Turn one stored conversation into the export record of its first inbound email.

    Never raises on document content: every way a document can be unusable maps to a :class:`SkipReason`.
    """
    if not isinstance(document, Mapping):
        return Skipped(SkipReason.MALFORMED_DOCUMENT)
    if mapping.tenant_field is not None:
        owner = get_path(document, mapping.tenant_field)
        if not is_missing(owner) and str(owner) != tenant:
            return Skipped(SkipReason.TENANT_MISMATCH)

    raw_id = get_path(document, mapping.id_field)
    if is_missing(raw_id):
        return Skipped(SkipReason.MISSING_ID)
    if isinstance(raw_id, bool | Mapping | list | bytes):
        return Skipped(SkipReason.MALFORMED_ID)
    conversation_id = str(raw_id)
    if not conversation_id.strip() or len(conversation_id) > MAX_CONVERSATION_ID_CHARS:
        return Skipped(SkipReason.MALFORMED_ID)

    raw_changed = get_path(document, mapping.time_field)
    if is_missing(raw_changed):
        return Skipped(SkipReason.MISSING_TIMESTAMP)
    changed_at = parse_timestamp(raw_changed)
    if changed_at is None:
        return Skipped(SkipReason.MALFORMED_TIMESTAMP)

    if is_deleted(document, mapping):
        return tombstone(conversation_id, tenant, changed_at)

    label = _label_value(document, mapping, label_field)
    if isinstance(label, SkipReason):
        return Skipped(label)

    if mapping.messages_field is None:
        email: Mapping[str, Any] = document
    else:
        found = _first_inbound(get_path(document, mapping.messages_field), mapping)
        if isinstance(found, SkipReason):
            return Skipped(found)
        email = found

    created_raw = get_path(email, mapping.sent_at_field) if mapping.messages_field is not None else _MISSING
    if is_missing(created_raw):
        created_raw = get_path(document, mapping.created_field)
    created_at = changed_at if is_missing(created_raw) else parse_timestamp(created_raw)
    if created_at is None:
        return Skipped(SkipReason.MALFORMED_TIMESTAMP)

    return _email_record(
        email,
        mapping,
        conversation_id=conversation_id,
        tenant=tenant,
        created_at=created_at,
        changed_at=changed_at,
        labels={label_field: label},
    )


def is_deleted(document: Mapping[str, Any], mapping: DocumentMapping) -> bool:
    if mapping.deleted_field is None:
        return False
    value = get_path(document, mapping.deleted_field)
    return not is_missing(value) and value is not False


def tombstone(conversation_id: str, tenant: str, changed_at: datetime) -> Normalized:
    """The export record of a deleted conversation: no text, no labels, ``deleted`` set."""
    record = ExportRecord(
        conversation_id=conversation_id,
        tenant_id=tenant,
        created_at=changed_at,
        updated_at=changed_at,
        body="",
        body_content_type="text/plain",
        deleted=True,
    )
    return Normalized(record=record, changed_at=changed_at)


def _email_record(
    email: Mapping[str, Any],
    mapping: DocumentMapping,
    *,
    conversation_id: str,
    tenant: str,
    created_at: datetime,
    changed_at: datetime,
    labels: dict[str, str],
) -> Normalized | Skipped:
    repairs: list[Repair] = []
    raw_type = get_path(email, mapping.content_type_field)
    raw_type_text = raw_type if isinstance(raw_type, str) else None
    raw_body = get_path(email, mapping.body_field)
    if is_missing(raw_body):
        return Skipped(SkipReason.MISSING_BODY)
    if isinstance(raw_body, bytes | bytearray | memoryview):
        data = bytes(raw_body)
        if len(data) > mapping.max_body_chars * 4:
            return Skipped(SkipReason.BODY_TOO_LARGE)
        body, body_repairs = read_body_bytes(data, raw_type_text)
        repairs.extend(body_repairs)
    elif isinstance(raw_body, str):
        body = raw_body
    else:
        return Skipped(SkipReason.MALFORMED_BODY)
    if len(body) > mapping.max_body_chars:
        return Skipped(SkipReason.BODY_TOO_LARGE)
    body, changed = scrub_text(body)
    if changed:
        repairs.append(Repair.INVALID_UNICODE_REPLACED)
    if not body.strip():
        return Skipped(SkipReason.EMPTY_BODY)

    subject = _subject(get_path(email, mapping.subject_field), raw_type_text, repairs)
    content_type, guessed = content_type_of(raw_type, body)
    if guessed:
        repairs.append(Repair.CONTENT_TYPE_GUESSED)
    try:
        record = ExportRecord(
            conversation_id=conversation_id,
            tenant_id=tenant,
            created_at=created_at,
            updated_at=changed_at,
            subject=subject,
            body=body,
            body_content_type=content_type,
            labels=labels,
        )
    except ValidationError:
        return Skipped(SkipReason.INVALID_RECORD)
    return Normalized(record=record, changed_at=changed_at, repairs=tuple(repairs))


def _subject(raw: object, content_type: str | None, repairs: list[Repair]) -> str | None:
    if is_missing(raw):
        return None
    if isinstance(raw, bytes | bytearray):
        text, subject_repairs = read_body_bytes(bytes(raw), content_type)
        repairs.extend(subject_repairs)
    elif isinstance(raw, str):
        text = raw
    else:
        repairs.append(Repair.SUBJECT_DROPPED)
        return None
    text, changed = scrub_text(text)
    if changed:
        repairs.append(Repair.INVALID_UNICODE_REPLACED)
    if len(text) > MAX_EXPORTED_SUBJECT_CHARS:
        repairs.append(Repair.SUBJECT_TRUNCATED)
        text = text[:MAX_EXPORTED_SUBJECT_CHARS]
    return text


def normalize_record_row(
    row: Mapping[str, Any], *, tenant: str, label_field: str, max_body_chars: int
) -> Normalized | Skipped:
    """A row already in export-record shape (dropped JSON Lines / Parquet files): validate and repair it."""
    if not isinstance(row, Mapping):
        return Skipped(SkipReason.MALFORMED_DOCUMENT)
    owner = row.get("tenant_id")
    if owner is not None and str(owner) != tenant:
        return Skipped(FilterReason.OTHER_TENANT)
    labels = row.get("labels")
    if isinstance(labels, list):  # Parquet map columns arrive as (key, value) pairs
        try:
            labels = dict(labels)
        except (TypeError, ValueError):
            return Skipped(SkipReason.MALFORMED_LABEL)
    if labels is not None and not isinstance(labels, Mapping):
        return Skipped(SkipReason.MALFORMED_LABEL)
    document = dict(row)
    if document.get("updated_at") is None:
        document["updated_at"] = document.get("created_at")
    mapping = (
        _FLAT
        if max_body_chars == _FLAT.max_body_chars
        else _FLAT.model_copy(update={"max_body_chars": max_body_chars})
    )
    if is_deleted(document, mapping):
        return normalize_document(document, mapping, tenant=tenant, label_field=label_field)
    # Label maps in files are flat: a dotted label field is one key here, not a nested path.
    label = _label_text((labels or {}).get(label_field))
    if label is SkipReason.MISSING_LABEL:
        return Skipped(FilterReason.NO_LABEL)
    if isinstance(label, SkipReason):
        return Skipped(label)
    document["labels"] = {}
    _set_path(document, _FLAT.label_path(label_field), label)
    return normalize_document(document, mapping, tenant=tenant, label_field=label_field)


#: Export-record-shaped rows seen through the document mapping (flat: the row is the email).
_FLAT = DocumentMapping(
    id_field="conversation_id",
    tenant_field=None,
    messages_field=None,
    content_type_field="body_content_type",
    deleted_field="deleted",
)


def conversation_document(
    record: Mapping[str, Any], mapping: DocumentMapping | None = None, *, agent_reply: str | None = None
) -> dict[str, Any]:
    """Lay an export-record-shaped dict out as a stored conversation (the inverse of normalization).

    Seeds a document store in the local demo, the tests and the benchmark, so they all exercise the documented
    model; ``agent_reply`` appends an outbound message, as a real thread would have.
    """
    m = mapping or DocumentMapping()
    email: dict[str, Any] = {}
    for path, value in (
        (m.direction_field, m.inbound_values[0]),
        (m.sent_at_field, record["created_at"]),
        (m.subject_field, record.get("subject")),
        (m.body_field, record["body"]),
        (m.content_type_field, record.get("body_content_type", "text/html")),
    ):
        _set_path(email, path, value)
    document: dict[str, Any] = {}
    changed = record.get("updated_at") or record["created_at"]
    for path, value in (
        (m.id_field, record["conversation_id"]),
        (m.created_field, record["created_at"]),
        (m.time_field, changed),
        (m.labels_field, dict(record.get("labels") or {})),
    ):
        _set_path(document, path, value)
    if m.tenant_field is not None:
        _set_path(document, m.tenant_field, record["tenant_id"])
    if m.messages_field is None:
        for key, value in email.items():
            document.setdefault(key, value)
        return document
    messages = [email]
    if agent_reply is not None:
        reply: dict[str, Any] = {}
        for path, value in (
            (m.direction_field, "outbound"),
            (m.sent_at_field, changed),
            (m.body_field, agent_reply),
        ):
            _set_path(reply, path, value)
        messages.append(reply)
    _set_path(document, m.messages_field, messages)
    return document


def _set_path(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        document = document.setdefault(part, {})
    document[leaf] = value
