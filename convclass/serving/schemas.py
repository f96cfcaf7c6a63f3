"""Request and response documents of ``POST /invocations`` (the OpenAPI schema is generated from these).

A request is either one email or ``{"emails": [...]}``; the answer always carries one prediction per email, in
order, so a caller handles single and batch requests the same way. Each prediction names the model version and
the cleaning version, so it can be published as an "email classified" event on its own.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter

from convclass.records import BodyContentType


class EmailIn(BaseModel):
    """One inbound email as the support system stores it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = Field(
        default=None, max_length=256, description="caller's reference, echoed back in the prediction"
    )
    subject: str | None = Field(default=None, description="subject line, if any")
    body: str = Field(description="the body as received (HTML or plain text)")
    body_content_type: BodyContentType = Field(
        default="text/html", description="how to read `body`: HTML is stripped, plain text is kept"
    )


class BatchIn(BaseModel):
    """Several emails classified in one model call: cheaper per email than one request each."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    emails: list[EmailIn] = Field(min_length=1, description="classified in order; see the batch-size limit")


def _request_kind(value: Any) -> str:
    # A callable discriminator keeps validation errors about the branch the caller meant (no union noise).
    if isinstance(value, dict) and "emails" in value:
        return "batch"
    if isinstance(value, BatchIn):
        return "batch"
    return "email"


InvocationRequest = Annotated[
    Annotated[EmailIn, Tag("email")] | Annotated[BatchIn, Tag("batch")],
    Discriminator(_request_kind),
]
INVOCATION_REQUEST: TypeAdapter[EmailIn | BatchIn] = TypeAdapter(InvocationRequest)


class LabelScore(BaseModel):
    label: str
    probability: float = Field(ge=0, le=1)


InputWarning = Literal["truncated", "malformed_markup", "broken_encoding"]


class Prediction(BaseModel):
    """The classification of one email."""

    id: str | None = Field(default=None, description="the request's `id`, if it had one")
    labels: list[LabelScore] = Field(
        description="top-k labels, most probable first; probabilities calibrated when the model carries a "
        "temperature"
    )
    auto_apply: bool = Field(
        default=False,
        description="true when the top label's calibrated probability reaches the model's auto-apply "
        "threshold (chosen on validation to reach the target precision, 95 % by default); always false "
        "for models trained without one",
    )
    model_version: str = Field(description="version of the model that answered")
    cleaning_version: str = Field(
        description="version of the cleaning applied (the one the model trained on)"
    )
    warnings: list[InputWarning] = Field(
        default_factory=list, description="input problems that were handled (the email was still classified)"
    )


class InvocationResponse(BaseModel):
    predictions: list[Prediction] = Field(description="one per email, in request order")


class ErrorResponse(BaseModel):
    """Every non-2xx answer. Messages name fields and limits, never echo email text."""

    error: str = Field(description="stable error name, e.g. InvalidInput, PayloadTooLarge, ModelFailure")
    message: str
    request_id: str
    fields: list[str] = Field(default_factory=list, description="offending fields, e.g. `emails[2].body`")


class PingResponse(BaseModel):
    status: Literal["ready", "loading", "failed"]
    model_version: str | None = None


#: SageMaker's model names are opaque tokens (hashes of the target model); they travel in URL paths.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$"


class LoadModelRequest(BaseModel):
    """``POST /models`` (multi-model mode): load the extracted model at ``url`` under ``model_name``."""

    model_config = ConfigDict(extra="ignore", frozen=True, protected_namespaces=())

    model_name: str = Field(pattern=MODEL_NAME_PATTERN, description="opaque name SageMaker assigns")
    url: str = Field(min_length=1, max_length=4096, description="directory of the extracted model.tar.gz")


class ModelDescription(BaseModel):
    """One loaded model, as SageMaker's multi-model contract spells it (hence the camelCase fields)."""

    model_config = ConfigDict(frozen=True)

    modelName: str
    modelUrl: str


class ModelList(BaseModel):
    models: list[ModelDescription]
    nextPageToken: str | None = None
