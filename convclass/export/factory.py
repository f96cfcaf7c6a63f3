"""Opens the source a request names, with the tenant's connection settings (never taken from the event)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opensearchpy import OpenSearch, Urllib3AWSV4SignerAuth

from convclass.errors import InvalidInput
from convclass.events import DataSource
from convclass.export.files import FilesSource
from convclass.export.mapping import DocumentMapping
from convclass.export.mongo import MongoSource, connect
from convclass.export.opensearch import DEFAULT_OPENSEARCH_MAPPING, OpenSearchSource
from convclass.export.retry import RetryPolicy
from convclass.export.settings import OpenSearchSettings, SourceSettings, redact_uri
from convclass.export.source import ConversationSource

#: Comma-separated prefixes (``{tenant}`` allowed) that a files source may read; unset allows any location.
FILES_ROOTS_ENV = "CONVCLASS_FILES_ROOTS"


def open_source(
    data_source: DataSource,
    *,
    tenant: str,
    settings: SourceSettings,
    environ: Mapping[str, str],
    s3: Any = None,
    retry: RetryPolicy | None = None,
) -> ConversationSource:
    if data_source.kind == "files":
        return _files(data_source, tenant=tenant, settings=settings, environ=environ, s3=s3)
    if data_source.kind == "mongodb":
        if settings.mongodb is None:
            raise InvalidInput("no MongoDB connection is configured for this tenant")
        mongo = settings.mongodb
        client = connect(
            mongo.uri.get_secret_value(), server_selection_timeout_ms=mongo.server_selection_timeout_ms
        )
        uri = redact_uri(mongo.uri.get_secret_value())
        return MongoSource(
            client[mongo.database][mongo.collection],
            settings.document_mapping(DocumentMapping()),
            description=f"{uri} {mongo.database}.{mongo.collection}",
            batch_size=mongo.batch_size,
            retry=retry,
            client=client,
        )
    if settings.opensearch is None:
        raise InvalidInput("no OpenSearch connection is configured for this tenant")
    search = settings.opensearch
    return OpenSearchSource(
        opensearch_client(search),
        search.index,
        settings.document_mapping(DEFAULT_OPENSEARCH_MAPPING),
        description=f"{','.join(redact_uri(h) for h in search.hosts)} index {search.index}",
        page_size=search.page_size,
        keep_alive=search.keep_alive,
        retry=retry,
    )


def opensearch_client(search: OpenSearchSettings) -> OpenSearch:
    auth: Any = None
    if search.aws_sigv4:
        import boto3  # only here: the export core itself never creates AWS clients

        if not search.region:
            raise InvalidInput("aws_sigv4 needs the OpenSearch domain's region")
        auth = Urllib3AWSV4SignerAuth(boto3.Session().get_credentials(), search.region, "es")
    elif search.username and search.password is not None:
        auth = (search.username, search.password.get_secret_value())
    return OpenSearch(
        hosts=search.hosts,
        http_auth=auth,
        verify_certs=search.verify_certs,
        timeout=search.timeout_s,
        max_retries=0,  # convclass retries itself, resuming after the last hit
    )


def _files(
    data_source: DataSource, *, tenant: str, settings: SourceSettings, environ: Mapping[str, str], s3: Any
) -> FilesSource:
    uri = data_source.uri or ""
    roots = [
        r.strip().replace("{tenant}", tenant)
        for r in environ.get(FILES_ROOTS_ENV, "").split(",")
        if r.strip()
    ]
    if roots and not any(uri.startswith(root) for root in roots):
        raise InvalidInput(
            "the files location is outside the locations this deployment allows for the tenant"
        )
    if ".." in uri.split("/"):
        raise InvalidInput("the files location must not contain '..'")
    mapping = settings.document_mapping(DocumentMapping())
    return FilesSource(uri, s3=s3, max_body_chars=mapping.max_body_chars)
