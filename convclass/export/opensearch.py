"""OpenSearch source (opensearch-py): point-in-time + ``search_after`` paging.

A point in time (PIT) freezes the index view for the whole export, and ``search_after`` on the sort values
of the last hit pages through it at constant cost per page; deep ``from``/``size`` paging is never used (it is
capped at ``index.max_result_window`` and slows down with every page). The sort is ``(time_field, id_field)``,
both real fields, so an expired PIT can be reopened and the read resumed after the last hit without
duplicates.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import (
    AuthenticationException,
    AuthorizationException,
    ConnectionError,
    NotFoundError,
    TransportError,
)

from convclass.errors import SourceUnavailable
from convclass.export.mapping import DocumentMapping, Normalized, Skipped, normalize_document
from convclass.export.retry import Attempts, RetryPolicy, call_with_retries
from convclass.export.source import ExportQuery, SourceKind

DEFAULT_PAGE_SIZE = 500
DEFAULT_KEEP_ALIVE = "5m"
_TRANSIENT_STATUS = frozenset({429, 502, 503, 504})

#: Search indices usually keep the conversation id in a keyword field (sorting on ``_id`` is discouraged).
DEFAULT_OPENSEARCH_MAPPING = DocumentMapping(id_field="conversation_id")


def is_transient(error: BaseException) -> bool:
    if isinstance(error, ConnectionError):  # includes ConnectionTimeout and SSL errors
        return True
    return isinstance(error, TransportError) and error.status_code in _TRANSIENT_STATUS


class _PitExpired(Exception):
    """The point in time vanished (keep-alive elapsed, node restarted): reopen and resume."""


class OpenSearchSource:
    kind: SourceKind = "opensearch"

    def __init__(
        self,
        client: OpenSearch,
        index: str,
        mapping: DocumentMapping = DEFAULT_OPENSEARCH_MAPPING,
        *,
        description: str,
        page_size: int = DEFAULT_PAGE_SIZE,
        keep_alive: str = DEFAULT_KEEP_ALIVE,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._client = client
        self._index = index
        self._mapping = mapping
        self._description = description
        self._page_size = page_size
        self._keep_alive = keep_alive
        self._retry = retry or RetryPolicy()

    def describe(self) -> str:
        return self._description

    def unreadable_locations(self) -> list[str]:
        return []

    def close(self) -> None:
        self._client.close()

    def search_body(self, query: ExportQuery) -> dict[str, Any]:
        """Query, sort and source filter of every page (the PIT and ``search_after`` are added per page)."""
        m = self._mapping
        filters: list[dict[str, Any]] = [
            {
                "range": {
                    m.time_field: {
                        "gte": query.window.start.isoformat(),
                        "lt": query.window.end.isoformat(),
                        "format": "strict_date_optional_time",
                    }
                }
            },
            {"exists": {"field": m.label_path(query.label_field)}},
        ]
        if m.tenant_field is not None:
            filters.append({"term": {m.tenant_field: query.tenant}})
        includes = [m.id_field, m.time_field, m.created_field, m.label_path(query.label_field)]
        for optional in (m.tenant_field, m.deleted_field):
            if optional is not None:
                includes.append(optional)
        prefix = "" if m.messages_field is None else f"{m.messages_field}."
        includes.extend(prefix + name for name in m.message_fields())
        return {
            "size": self._page_size,
            "query": {"bool": {"filter": filters}},
            "sort": [{m.time_field: {"order": "asc"}}, {m.id_field: {"order": "asc"}}],
            "_source": {"includes": includes},
            "track_total_hits": False,
        }

    def count(self, query: ExportQuery) -> int | None:
        body = {"query": self.search_body(query)["query"]}
        return call_with_retries(
            lambda: int(self._client.count(index=self._index, body=body)["count"]),
            policy=self._retry,
            transient=is_transient,
            what="OpenSearch count",
        )

    def conversations(self, query: ExportQuery) -> Iterator[Normalized | Skipped]:
        attempts = Attempts(self._retry, "OpenSearch read")
        body = self.search_body(query)
        pit_id: str | None = None
        search_after: list[Any] | None = None
        try:
            while True:
                try:
                    if pit_id is None:
                        pit_id = self._open_pit()
                    page = self._page(body, pit_id, search_after)
                except _PitExpired as error:
                    pit_id = None
                    attempts.failed(error)
                    continue
                except Exception as error:
                    if not is_transient(error):
                        raise
                    attempts.failed(error)
                    continue
                hits = page["hits"]["hits"]
                pit_id = page.get("pit_id", pit_id)
                for hit in hits:
                    yield normalize_document(
                        hit.get("_source") or {},
                        self._mapping,
                        tenant=query.tenant,
                        label_field=query.label_field,
                    )
                if len(hits) < self._page_size:
                    return
                search_after = hits[-1]["sort"]
        finally:
            if pit_id is not None:
                self._close_pit(pit_id)

    def _open_pit(self) -> str:
        try:
            response = self._client.create_pit(index=self._index, params={"keep_alive": self._keep_alive})
        except NotFoundError:
            raise SourceUnavailable("OpenSearch index not found") from None
        except (AuthenticationException, AuthorizationException) as error:
            raise SourceUnavailable(
                f"OpenSearch refused the export's credentials ({error.status_code})"
            ) from None
        return str(response["pit_id"])

    def _page(self, body: dict[str, Any], pit_id: str, search_after: list[Any] | None) -> dict[str, Any]:
        request = dict(body, pit={"id": pit_id, "keep_alive": self._keep_alive})
        if search_after is not None:
            request["search_after"] = search_after
        try:
            response: dict[str, Any] = self._client.search(body=request)
        except NotFoundError as error:
            raise _PitExpired("point in time expired") from error
        return response

    def _close_pit(self, pit_id: str) -> None:
        """Best effort: an unclosed PIT expires by itself after ``keep_alive``."""
        with contextlib.suppress(Exception):  # closing is an optimisation, never a reason to fail
            self._client.delete_pit(body={"pit_id": [pit_id]})
