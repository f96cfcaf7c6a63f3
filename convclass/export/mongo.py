"""MongoDB source (pymongo): server-side filter and projection, batched cursor, resumable retries.

The query matches the tenant, the window on the change-time field, the presence of the requested label and
an inbound message; the projection returns only the fields an export record needs (with messages in arrival
order, ``$elemMatch`` returns just the first inbound message, so long threads never cross the network).
Results are sorted by ``(time_field, _id)``: after a transient failure the read resumes after the last
document it yielded instead of starting again, so nothing is exported twice. Recommended index::

    db.conversations.createIndex({tenant_id: 1, updated_at: 1, _id: 1})
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pymongo import MongoClient
from pymongo.errors import ConnectionFailure, CursorNotFound, ExecutionTimeout, OperationFailure, PyMongoError

from convclass.errors import SourceUnavailable
from convclass.export.mapping import DocumentMapping, Normalized, Skipped, normalize_document
from convclass.export.retry import Attempts, RetryPolicy, call_with_retries
from convclass.export.source import ExportQuery, SourceKind

DEFAULT_BATCH_SIZE = 500
_AUTH_ERROR_CODES = frozenset({13, 18})  # Unauthorized, AuthenticationFailed


def is_transient(error: BaseException) -> bool:
    """Network trouble, elections, cursor loss or a server-side timeout: worth another attempt."""
    if isinstance(error, ConnectionFailure | CursorNotFound | ExecutionTimeout):
        return True
    return isinstance(error, PyMongoError) and (
        error.has_error_label("RetryableReadError") or error.has_error_label("TransientTransactionError")
    )


def connect(uri: str, *, server_selection_timeout_ms: int = 10_000) -> MongoClient[dict[str, Any]]:
    """A client that tolerates real stores: invalid UTF-8 and out-of-range dates don't abort a read."""
    return MongoClient(
        uri,
        tz_aware=True,
        appname="convclass-export",
        serverSelectionTimeoutMS=server_selection_timeout_ms,
        retryReads=True,
        unicode_decode_error_handler="replace",
        datetime_conversion="DATETIME_AUTO",
    )


class MongoSource:
    kind: SourceKind = "mongodb"

    def __init__(
        self,
        collection: Any,
        mapping: DocumentMapping,
        *,
        description: str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        retry: RetryPolicy | None = None,
        client: Any = None,
    ) -> None:
        """``collection`` is a pymongo (or mongomock) collection; ``client`` is closed by :meth:`close`."""
        self._collection = collection
        self._mapping = mapping
        self._description = description
        self._batch_size = batch_size
        self._retry = retry or RetryPolicy()
        self._client = client

    def describe(self) -> str:
        return self._description

    def unreadable_locations(self) -> list[str]:
        return []

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def query_filter(self, query: ExportQuery) -> dict[str, Any]:
        m = self._mapping
        conditions: dict[str, Any] = {
            m.time_field: {"$gte": query.window.start, "$lt": query.window.end},
            m.label_path(query.label_field): {"$exists": True, "$nin": [None, ""]},
        }
        if m.tenant_field is not None:
            conditions[m.tenant_field] = query.tenant
        if m.messages_field is not None:
            conditions[m.messages_field] = {
                "$elemMatch": {m.direction_field: {"$in": list(m.inbound_values)}}
            }
        return conditions

    def projection(self, query: ExportQuery) -> dict[str, Any]:
        m = self._mapping
        fields = [m.id_field, m.time_field, m.created_field, m.label_path(query.label_field)]
        for optional in (m.tenant_field, m.deleted_field):
            if optional is not None:
                fields.append(optional)
        projection: dict[str, Any] = dict.fromkeys(fields, 1)
        projection["_id"] = 1
        if m.messages_field is None:
            projection.update(dict.fromkeys(m.message_fields(), 1))
        elif m.messages_in_order:
            projection[m.messages_field] = {
                "$elemMatch": {m.direction_field: {"$in": list(m.inbound_values)}}
            }
        else:
            projection.update({f"{m.messages_field}.{name}": 1 for name in m.message_fields()})
        return projection

    def count(self, query: ExportQuery) -> int | None:
        condition = self.query_filter(query)
        return call_with_retries(
            lambda: int(self._collection.count_documents(condition)),
            policy=self._retry,
            transient=is_transient,
            what="MongoDB count",
        )

    def conversations(self, query: ExportQuery) -> Iterator[Normalized | Skipped]:
        base = self.query_filter(query)
        projection = self.projection(query)
        sort = [(self._mapping.time_field, 1), ("_id", 1)]
        attempts = Attempts(self._retry, "MongoDB read")
        last: tuple[Any, Any] | None = None
        while True:
            condition = base if last is None else {"$and": [base, self._after(*last)]}
            try:
                cursor = self._collection.find(
                    condition, projection, sort=sort, batch_size=self._batch_size, allow_disk_use=True
                )
                for document in cursor:
                    last = (self._time_of(document), document.get("_id"))
                    yield normalize_document(
                        document, self._mapping, tenant=query.tenant, label_field=query.label_field
                    )
                return
            except OperationFailure as error:
                if error.code in _AUTH_ERROR_CODES:
                    raise SourceUnavailable(
                        f"MongoDB refused the export's credentials ({error.code})"
                    ) from None
                if not is_transient(error):
                    raise
                attempts.failed(error)
            except Exception as error:
                if not is_transient(error):
                    raise
                attempts.failed(error)

    def _time_of(self, document: Mapping[str, Any]) -> Any:
        value: Any = document
        for part in self._mapping.time_field.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return value

    def _after(self, moment: Any, doc_id: Any) -> dict[str, Any]:
        field = self._mapping.time_field
        return {"$or": [{field: {"$gt": moment}}, {field: moment, "_id": {"$gt": doc_id}}]}
