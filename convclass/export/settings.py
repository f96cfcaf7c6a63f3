"""Connection settings of a tenant's store: from Secrets Manager or the environment, never from the event.

Lookup order: ``CONVCLASS_SOURCE_SECRET_ID`` (a secret id or ARN; ``{tenant}`` is replaced by the tenant id,
so each tenant's store can have its own secret) → the ``CONVCLASS_MONGODB_*`` / ``CONVCLASS_OPENSEARCH_*`` /
``CONVCLASS_EXPORT_MAPPING`` environment variables. Secrets are held as ``SecretStr`` so no repr, log line or
manifest can show them; :func:`redact_uri` is what the manifest records instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from convclass.errors import InvalidInput, SourceUnavailable, UnknownTenant
from convclass.export.mapping import DocumentMapping
from convclass.export.opensearch import DEFAULT_KEEP_ALIVE, DEFAULT_PAGE_SIZE

SECRET_ID_ENV = "CONVCLASS_SOURCE_SECRET_ID"  # noqa: S105 - the name of a variable, not a secret


class MongoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    uri: SecretStr
    database: str = Field(min_length=1, max_length=64)
    collection: str = Field(default="conversations", min_length=1, max_length=120)
    batch_size: int = Field(default=500, ge=1, le=10_000)
    server_selection_timeout_ms: int = Field(default=10_000, ge=100)


class OpenSearchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hosts: list[str] = Field(min_length=1)
    index: str = Field(default="conversations", min_length=1, max_length=255)
    username: str | None = None
    password: SecretStr | None = None
    #: Amazon OpenSearch Service with IAM: sign requests with the Lambda role (SigV4) instead of a password.
    aws_sigv4: bool = False
    region: str | None = None
    verify_certs: bool = True
    page_size: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=10_000)
    keep_alive: str = Field(default=DEFAULT_KEEP_ALIVE, pattern=r"^[1-9][0-9]*[smh]$")
    timeout_s: int = Field(default=30, ge=1)


class SourceSettings(BaseModel):
    """The connection of one tenant's store plus, optionally, how its documents are laid out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mongodb: MongoSettings | None = None
    opensearch: OpenSearchSettings | None = None
    #: Overrides of :class:`DocumentMapping` fields (e.g. ``{"labels_field": "tags"}``).
    mapping: dict[str, Any] = Field(default_factory=dict)

    def document_mapping(self, base: DocumentMapping) -> DocumentMapping:
        try:
            return DocumentMapping.model_validate({**base.model_dump(), **self.mapping})
        except ValidationError as error:
            raise InvalidInput(f"export mapping override is invalid: {_locations(error)}") from None


def redact_uri(uri: str) -> str:
    """``scheme://user:pw@host1,host2/db?opts`` → ``scheme://host1,host2/db``: safe for manifests and logs."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return "<unparseable uri>"
    location = re.split(r"[/?#]", rest, maxsplit=1)[0]
    hosts = location.rsplit("@", 1)[-1]
    path = rest[len(location) :].split("?", 1)[0].split("#", 1)[0]
    return f"{scheme}://{hosts}{path}"


def _locations(error: ValidationError) -> str:
    """Field locations of a validation error, without the offending values (they may be secrets)."""
    return ", ".join(".".join(str(p) for p in item["loc"]) or "<root>" for item in error.errors())


def load_source_settings(tenant: str, *, environ: Mapping[str, str], secrets: Any = None) -> SourceSettings:
    """Settings for ``tenant``'s store; ``secrets`` is a Secrets Manager client (needed for the secret)."""
    secret_id = environ.get(SECRET_ID_ENV)
    if secret_id:
        return _from_secret(secret_id.replace("{tenant}", tenant), secrets)
    return _from_environment(environ)


def _from_secret(secret_id: str, secrets: Any) -> SourceSettings:
    if secrets is None:
        raise InvalidInput("a Secrets Manager client is required to read the source secret")
    try:
        value = secrets.get_secret_value(SecretId=secret_id)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise UnknownTenant("no source connection is configured for this tenant") from None
        raise SourceUnavailable(f"Secrets Manager refused the source secret ({code})") from None
    except BotoCoreError as error:
        raise SourceUnavailable(f"Secrets Manager unreachable ({type(error).__name__})") from None
    try:
        return SourceSettings.model_validate(json.loads(value.get("SecretString") or ""))
    except ValidationError as error:
        raise InvalidInput(f"source secret does not match the settings schema: {_locations(error)}") from None
    except ValueError:
        raise InvalidInput("source secret is not a JSON object") from None


def _from_environment(environ: Mapping[str, str]) -> SourceSettings:
    raw: dict[str, Any] = {}
    if environ.get("CONVCLASS_MONGODB_URI"):
        raw["mongodb"] = {
            "uri": environ["CONVCLASS_MONGODB_URI"],
            "database": environ.get("CONVCLASS_MONGODB_DATABASE", ""),
            "collection": environ.get("CONVCLASS_MONGODB_COLLECTION", "conversations"),
        }
    if environ.get("CONVCLASS_OPENSEARCH_HOSTS"):
        raw["opensearch"] = {
            "hosts": [h.strip() for h in environ["CONVCLASS_OPENSEARCH_HOSTS"].split(",") if h.strip()],
            "index": environ.get("CONVCLASS_OPENSEARCH_INDEX", "conversations"),
            "username": environ.get("CONVCLASS_OPENSEARCH_USERNAME") or None,
            "password": environ.get("CONVCLASS_OPENSEARCH_PASSWORD") or None,
            "aws_sigv4": environ.get("CONVCLASS_OPENSEARCH_SIGV4", "").lower() in {"1", "true", "yes"},
            "region": environ.get("AWS_REGION") or None,
        }
    try:
        if environ.get("CONVCLASS_EXPORT_MAPPING"):
            raw["mapping"] = json.loads(environ["CONVCLASS_EXPORT_MAPPING"])
        return SourceSettings.model_validate(raw)
    except ValidationError as error:
        raise InvalidInput(
            f"source environment does not match the settings schema: {_locations(error)}"
        ) from None
    except ValueError:
        raise InvalidInput("CONVCLASS_EXPORT_MAPPING is not valid JSON") from None
