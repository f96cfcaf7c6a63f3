"""A small OpenSearch on 127.0.0.1 that speaks the point-in-time + ``search_after`` protocol.

An HTTP server (rather than a fake client object) so the real opensearch-py client builds and sends the
requests: URL paths, query parameters and JSON bodies are exercised as they would be against a cluster. It
understands the query shapes the export sends (bool/filter with range, exists, term), sorts, ``_source``
includes, and refuses deep ``from`` paging. Failures can be injected: HTTP status codes for the next searches,
and expiry of every open PIT.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from convclass.export.window import parse_timestamp

Doc = dict[str, Any]


def _get(document: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(document, dict) or part not in document:
            return None
        document = document[part]
    return document


def _include(document: Any, paths: list[str]) -> Any:
    """``_source.includes`` for plain dotted paths, through arrays of objects as OpenSearch does."""
    if isinstance(document, list):
        return [_include(item, paths) for item in document]
    if not isinstance(document, dict):
        return document
    out: Doc = {}
    for path in paths:
        head, _, rest = path.partition(".")
        if head not in document:
            continue
        if not rest:
            out[head] = document[head]
        else:
            sub = _include(document[head], [rest])
            if isinstance(out.get(head), dict) and isinstance(sub, dict):
                out[head].update(sub)
            elif isinstance(out.get(head), list) and isinstance(sub, list):
                for mine, theirs in zip(out[head], sub, strict=True):
                    mine.update(theirs)
            else:
                out[head] = sub
    return out


def _matches(document: Doc, clause: Doc) -> bool:
    ((kind, spec),) = clause.items()
    if kind == "range":
        ((field, bounds),) = spec.items()
        value = parse_timestamp(_get(document, field))
        if value is None:
            return False
        start, end = parse_timestamp(bounds.get("gte")), parse_timestamp(bounds.get("lt"))
        return (start is None or value >= start) and (end is None or value < end)
    if kind == "exists":
        return _get(document, spec["field"]) not in (None, [], "")
    if kind == "term":
        ((field, value),) = spec.items()
        return bool(_get(document, field) == value)
    raise ValueError(f"unsupported query clause {kind}")


def _sort_value(document: Doc, field: str) -> Any:
    value = _get(document, field)
    moment = parse_timestamp(value) if field.endswith("_at") else None
    return int(moment.timestamp() * 1000) if isinstance(moment, datetime) else value


class FakeOpenSearch:
    def __init__(self, index: str, documents: list[Doc]) -> None:
        self.index = index
        self.documents = documents
        self.requests: list[tuple[str, str, Doc]] = []
        self.fail_next: list[int] = []  # HTTP statuses for the next searches
        self.pits: dict[str, list[Doc]] = {}  # PIT id -> frozen view of the index
        self.closed_pits: list[str] = []
        self._counter = 0
        self._lock = threading.Lock()

    def expire_pits(self) -> None:
        self.pits.clear()

    def handle(self, method: str, path: str, body: Doc) -> tuple[int, Doc]:
        with self._lock:
            self.requests.append((method, path, body))
            if path == f"/{self.index}/_search/point_in_time" and method == "POST":
                self._counter += 1
                pit = f"pit-{self._counter}"
                self.pits[pit] = [json.loads(json.dumps(d)) for d in self.documents]
                return 200, {"pit_id": pit, "_shards": {"total": 1, "successful": 1}, "creation_time": 0}
            if path.endswith("/_search/point_in_time") and method == "POST":
                return 404, {"error": {"type": "index_not_found_exception"}, "status": 404}
            if path == "/_search/point_in_time" and method == "DELETE":
                for pit in body.get("pit_id", []):
                    self.closed_pits.append(pit)
                    self.pits.pop(pit, None)
                return 200, {"pits": [{"pit_id": p, "successful": True} for p in body.get("pit_id", [])]}
            if path == "/_search":
                return self._search(body)
            if path == f"/{self.index}/_count" and method in {"GET", "POST"}:
                filters = body["query"]["bool"]["filter"]
                return 200, {"count": sum(all(_matches(d, f) for f in filters) for d in self.documents)}
            return 400, {"error": f"unsupported request {method} {path}"}

    def _search(self, body: Doc) -> tuple[int, Doc]:
        if self.fail_next:
            status = self.fail_next.pop(0)
            return status, {"error": {"type": "injected"}, "status": status}
        if body.get("from"):
            return 400, {"error": "deep from/size paging is not allowed here"}
        pit = body.get("pit", {}).get("id")
        if pit not in self.pits:
            return 404, {"error": {"type": "search_context_missing_exception"}, "status": 404}
        filters = body["query"]["bool"]["filter"]
        fields = [next(iter(s)) for s in body["sort"]]
        hits = [d for d in self.pits[pit] if all(_matches(d, f) for f in filters)]
        keyed = sorted(([_sort_value(d, f) for f in fields], d) for d in hits)  # type: ignore[misc]
        after = body.get("search_after")
        if after is not None:
            keyed = [(k, d) for k, d in keyed if k > after]
        page = keyed[: body["size"]]
        includes = body.get("_source", {}).get("includes")
        return 200, {
            "pit_id": pit,
            "hits": {
                "hits": [
                    {"_id": str(i), "_source": _include(d, includes) if includes else d, "sort": k}
                    for i, (k, d) in enumerate(page)
                ]
            },
        }


@contextmanager
def serve(fake: FakeOpenSearch) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else {}
            status, answer = fake.handle(self.command, urlsplit(self.path).path, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
