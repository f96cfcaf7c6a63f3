"""OpenSearch path: the real opensearch-py client against a local PIT/search_after server → moto S3."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from export_support import BUCKET, LABEL, TENANT, WHERE, make_request, read_manifest, read_rows
from fake_opensearch import FakeOpenSearch, serve
from opensearchpy import OpenSearch

from convclass.errors import SourceUnavailable
from convclass.export.mapping import conversation_document
from convclass.export.opensearch import DEFAULT_OPENSEARCH_MAPPING, OpenSearchSource
from convclass.export.request import ExportSummary
from convclass.export.retry import RetryPolicy
from convclass.export.run import ExportTarget, execute
from convclass.export.source import ExportQuery
from convclass.export.window import EPOCH, TimeWindow
from convclass_local.generator import iter_emails

NOW = datetime(2026, 3, 1, tzinfo=UTC)
NO_WAIT = RetryPolicy(attempts=4, sleep=lambda _s: None)


def as_json(document: dict[str, Any]) -> dict[str, Any]:
    """What an index holds: dates as ISO strings."""
    out: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
        elif isinstance(value, list):
            out[key] = [as_json(v) for v in value]
        elif isinstance(value, dict):
            out[key] = as_json(value)
        else:
            out[key] = value
    return out


@pytest.fixture
def cluster() -> Iterator[tuple[FakeOpenSearch, str]]:
    emails = list(iter_emails(57, seed=11, tenant_id=TENANT, label_field=LABEL, duplicate_rate=0.0))
    docs = [as_json(conversation_document(e, DEFAULT_OPENSEARCH_MAPPING, agent_reply="ok")) for e in emails]
    docs.append({**docs[0], "conversation_id": "other-tenant", "tenant_id": "globex"})
    docs.append({**docs[1], "conversation_id": "unlabelled", "labels": {}})
    docs.append({**docs[2], "conversation_id": "bad-date", "updated_at": "last tuesday"})
    fake = FakeOpenSearch("conversations", docs)
    with serve(fake) as url:
        yield fake, url


def open_source(url: str, **kwargs: Any) -> OpenSearchSource:
    client = OpenSearch(hosts=[url], max_retries=0, timeout=5)
    return OpenSearchSource(client, "conversations", description=url, page_size=10, retry=NO_WAIT, **kwargs)


def run(s3: Any, url: str) -> ExportSummary:
    result = execute(
        make_request(data_source={"kind": "opensearch"}),
        ExportTarget(s3=s3, bucket=BUCKET, clock=lambda: NOW),
        lambda: open_source(url),
    )
    assert isinstance(result, ExportSummary)
    return result


def test_pages_with_pit_and_search_after_never_from(
    approved: Any, cluster: tuple[FakeOpenSearch, str]
) -> None:
    fake, url = cluster
    result = run(approved, url)
    manifest = read_manifest(approved, WHERE.export_manifest_key("run-1"))
    rows = read_rows(approved, manifest)
    assert result.records == len(rows) == 57
    assert len({r["conversation_id"] for r in rows}) == 57
    assert all(r["tenant_id"] == TENANT for r in rows)

    searches = [body for method, path, body in fake.requests if path == "/_search"]
    assert len(searches) == 6  # 57 hits in pages of 10
    assert all("from" not in body and body["pit"]["id"] == "pit-1" for body in searches)
    assert "search_after" not in searches[0]
    assert all("search_after" in body for body in searches[1:])
    assert fake.closed_pits == ["pit-1"]
    # The source filter keeps message bodies but not unrelated fields of the thread.
    assert "messages.body" in searches[0]["_source"]["includes"]


def test_transient_errors_and_expired_pit_resume_without_duplicates(
    approved: Any, cluster: tuple[FakeOpenSearch, str]
) -> None:
    fake, url = cluster
    source = open_source(url)
    original = source._page
    pages = 0

    def page(*args: Any) -> dict[str, Any]:
        nonlocal pages
        pages += 1
        if pages == 2:
            fake.fail_next.extend([503, 429])
        if pages == 4:
            fake.expire_pits()
        return original(*args)

    source._page = page  # type: ignore[method-assign]
    result = execute(
        make_request(data_source={"kind": "opensearch"}),
        ExportTarget(s3=approved, bucket=BUCKET, clock=lambda: NOW),
        lambda: source,
    )
    assert isinstance(result, ExportSummary)
    assert result.records == 57
    assert fake.fail_next == []  # both injected errors were met and retried
    rows = read_rows(approved, read_manifest(approved, WHERE.export_manifest_key("run-1")))
    assert len({r["conversation_id"] for r in rows}) == len(rows) == 57
    assert [p for m, p, _ in fake.requests if p.endswith("point_in_time") and m == "POST"] == [
        "/conversations/_search/point_in_time"
    ] * 2  # reopened once after expiry


def test_persistent_outage_is_source_unavailable(approved: Any, cluster: tuple[FakeOpenSearch, str]) -> None:
    fake, url = cluster
    fake.fail_next.extend([503] * 10)
    with pytest.raises(SourceUnavailable):
        run(approved, url)
    with pytest.raises(SourceUnavailable):  # nothing listens on port 9
        run(approved, "http://127.0.0.1:9")
    keys = approved.list_objects_v2(Bucket=BUCKET, Prefix=WHERE.export_prefix("run-1")).get("Contents", [])
    assert keys == []


def test_missing_index_is_source_unavailable(approved: Any, cluster: tuple[FakeOpenSearch, str]) -> None:
    _, url = cluster
    client = OpenSearch(hosts=[url], max_retries=0)
    source = OpenSearchSource(client, "no-such-index", description=url, retry=NO_WAIT)
    with pytest.raises(SourceUnavailable, match="index not found"):
        execute(
            make_request(data_source={"kind": "opensearch"}),
            ExportTarget(s3=approved, bucket=BUCKET, clock=lambda: NOW),
            lambda: source,
        )


def test_bad_documents_in_the_index_are_counted(approved: Any, cluster: tuple[FakeOpenSearch, str]) -> None:
    fake, url = cluster
    fake.documents.append({"conversation_id": "no-messages", "tenant_id": TENANT,
                           "updated_at": "2026-01-20T00:00:00Z", "labels": {LABEL: "x"}})  # fmt: skip
    result = run(approved, url)
    manifest = read_manifest(approved, WHERE.export_manifest_key("run-1"))
    assert result.read == 58
    assert result.records == 57
    assert manifest.counts.skipped == {"no_inbound_email": 1}


def test_the_count_is_the_tenants_labelled_conversations_in_the_window(
    cluster: tuple[FakeOpenSearch, str],
) -> None:
    fake, url = cluster
    source = open_source(url)
    everything = ExportQuery(tenant=TENANT, label_field=LABEL, window=TimeWindow(start=EPOCH, end=NOW))
    # The tenant's 57 labelled conversations: never the other tenant's, the unlabelled or the undated one.
    assert source.count(everything) == 57
    assert any(path == "/conversations/_count" for _, path, _ in fake.requests)
    assert source.count(ExportQuery(TENANT, LABEL, TimeWindow(start=NOW, end=NOW + timedelta(days=1)))) == 0
