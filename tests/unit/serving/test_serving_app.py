"""Every status code of /ping and /invocations, with real cleaning and tokenization over a numpy model."""

from __future__ import annotations

import json
import logging
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serving_fakes import LABELS, LIMITS, MAX_LENGTH, NumpyBackend
from tokenizers import Tokenizer

from convclass.artifacts import Confidence
from convclass.cleaning import CLEANING_VERSION
from convclass.errors import IncompatibleModel, ModelFailure
from convclass.serving import EmailClassifier, InboundEmail, create_app

SECRET = "Zebra-7731 confidential"  # appears in email text; must never reach a log line or an error message


def email(body: str = "<p>My card payment was declined</p>", **extra: object) -> dict[str, object]:
    return {"body": body, **extra}


def post_json(client: TestClient, document: object, **headers: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/invocations", content=json.dumps(document), headers={"content-type": "application/json", **headers}
    )


def test_ping_is_200_with_the_model_version_once_loaded(client: TestClient) -> None:
    response = client.get("/ping")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "model_version": "7"}


def test_ping_is_503_until_the_background_load_finishes(classifier: EmailClassifier) -> None:
    release = threading.Event()

    def slow_loader() -> EmailClassifier:
        assert release.wait(10)
        return classifier

    with TestClient(create_app(loader=slow_loader)) as client:
        assert client.get("/ping").status_code == 503
        assert client.get("/ping").json()["status"] == "loading"
        invoked = post_json(client, email())
        assert invoked.status_code == 503
        assert invoked.json()["error"] == "ModelNotReady"
        release.set()
        for _ in range(200):
            if client.get("/ping").status_code == 200:
                break
            threading.Event().wait(0.01)
        assert client.get("/ping").status_code == 200
        assert post_json(client, email()).status_code == 200


def test_ping_is_503_failed_when_the_model_cannot_load(caplog: pytest.LogCaptureFixture) -> None:
    def broken_loader() -> EmailClassifier:
        raise IncompatibleModel("model was trained on cleaning version 'old'")

    with caplog.at_level(logging.ERROR), TestClient(create_app(loader=broken_loader)) as client:
        for _ in range(200):
            if client.get("/ping").json()["status"] == "failed":
                break
            threading.Event().wait(0.01)
        response = client.get("/ping")
    assert response.status_code == 503
    assert response.json()["status"] == "failed"
    assert "IncompatibleModel" in caplog.text


def test_ping_is_503_when_the_backend_stops_answering(client: TestClient, backend: NumpyBackend) -> None:
    backend.is_healthy = False
    assert client.get("/ping").status_code == 503


def test_create_app_needs_exactly_one_model_source(classifier: EmailClassifier) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        create_app()
    with pytest.raises(ValueError, match="exactly one"):
        create_app(classifier, loader=lambda: classifier)


def test_single_email_gets_top_k_labels_and_versions(client: TestClient) -> None:
    response = post_json(client, email(subject="Declined", id="conv-1"), **{"x-request-id": "req-42"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-42"
    (prediction,) = response.json()["predictions"]
    assert prediction["id"] == "conv-1"
    assert prediction["model_version"] == "7"
    assert prediction["cleaning_version"] == CLEANING_VERSION
    probabilities = [s["probability"] for s in prediction["labels"]]
    assert len(probabilities) == LIMITS.top_k
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) <= 1.0 + 1e-6
    assert {s["label"] for s in prediction["labels"]} <= set(LABELS)


def test_batch_answers_in_order_and_matches_single_requests(
    client: TestClient, backend: NumpyBackend
) -> None:
    bodies = ["card declined at the shop", "refund my order please", "i lost my card", "new address"]
    batch = post_json(client, {"emails": [email(b, id=str(i)) for i, b in enumerate(bodies)]})
    assert batch.status_code == 200
    # Four emails with model_batch_size=3: two model calls for the whole batch, not four.
    assert backend.calls == [3, 1]
    predictions = batch.json()["predictions"]
    assert [p["id"] for p in predictions] == ["0", "1", "2", "3"]
    for body, prediction in zip(bodies, predictions, strict=True):
        single = post_json(client, email(body)).json()["predictions"][0]
        assert [s["label"] for s in single["labels"]] == [s["label"] for s in prediction["labels"]]
        assert [s["probability"] for s in single["labels"]] == pytest.approx(
            [s["probability"] for s in prediction["labels"]], abs=1e-6
        )


def test_text_plain_body_is_one_email(client: TestClient) -> None:
    response = client.post(
        "/invocations",
        content="Hello, my card was declined. Call me at +44 20 7946 0958".encode("cp1252"),
        headers={"content-type": "text/plain; charset=utf-8"},
    )
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 1


def test_handled_input_problems_are_reported_as_warnings(client: TestClient) -> None:
    response = post_json(client, email("<div><p>declined <b>card"))
    assert response.status_code == 200
    assert response.json()["predictions"][0]["warnings"] == ["malformed_markup"]
    damaged = client.post("/invocations", content=b"caf\xe9 card", headers={"content-type": "text/plain"})
    assert damaged.json()["predictions"][0]["warnings"] == ["broken_encoding"]


def test_long_emails_are_truncated_and_flagged(classifier: EmailClassifier) -> None:
    (prediction,) = classifier.classify([InboundEmail(body="<p>declined " + "word " * 2000)])
    assert prediction.warnings == ["truncated"]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"subject": "x"}, "body"),
        ({"body": 3}, "body"),
        ({"body": "x", "body_content_type": "application/pdf"}, "body_content_type"),
        ({"body": "x", "colour": "red"}, "colour"),
        ({"emails": [email(), {"subject": "no body"}]}, "emails[1].body"),
        ({"emails": []}, "emails"),
        ({"emails": "x"}, "emails"),
        (["not", "an", "object"], "(request body)"),
    ],
)
def test_schema_errors_are_400_and_name_the_field(client: TestClient, document: object, field: str) -> None:
    response = post_json(client, document)
    assert response.status_code == 400
    payload = response.json()
    assert payload["error"] == "InvalidInput"
    assert field in payload["fields"]
    assert field in payload["message"]


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post(
        "/invocations", content=b'{"body": "' + SECRET.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["fields"] == ["body"]
    assert "not valid JSON" in response.json()["message"]
    assert SECRET not in response.text


def test_empty_text_body_is_400(client: TestClient) -> None:
    response = client.post("/invocations", content=b"", headers={"content-type": "text/plain"})
    assert response.status_code == 400


def test_non_numeric_content_length_is_400(client: TestClient) -> None:
    response = client.post(
        "/invocations", content=b"{}", headers={"content-type": "application/json", "content-length": "x"}
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "content_type", ["application/xml", "text/csv", "multipart/form-data; boundary=x", None]
)
def test_other_content_types_are_415(client: TestClient, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/invocations", content=b"<email/>", headers=headers)
    assert response.status_code == 415
    assert response.json()["error"] == "UnsupportedMediaType"


def test_batch_over_the_limit_is_413(client: TestClient, backend: NumpyBackend) -> None:
    response = post_json(client, {"emails": [email()] * (LIMITS.max_batch_emails + 1)})
    assert response.status_code == 413
    assert response.json()["fields"] == ["emails"]
    assert backend.calls == []


def test_email_over_the_limit_is_413_and_named(client: TestClient) -> None:
    big = "é" * (LIMITS.max_email_bytes // 2 + 1)  # under the limit in characters, over it in UTF-8 bytes
    response = post_json(client, {"emails": [email(), email(big)]})
    assert response.status_code == 413
    assert response.json()["fields"] == ["emails[1]"]
    single = post_json(client, email(big))
    assert single.status_code == 413
    text = client.post("/invocations", content=big.encode(), headers={"content-type": "text/plain"})
    assert text.status_code == 413


def test_request_over_the_limit_is_413_by_header_and_by_stream(client: TestClient) -> None:
    oversized = json.dumps({"emails": [email("x" * 1000)] * 20}).encode()
    assert len(oversized) > LIMITS.max_request_bytes
    declared = client.post("/invocations", content=oversized, headers={"content-type": "application/json"})
    assert declared.status_code == 413

    def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(oversized), 1000):
            yield oversized[start : start + 1000]

    streamed = client.post("/invocations", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413


def test_model_failure_is_500_without_internals(
    client: TestClient, backend: NumpyBackend, caplog: pytest.LogCaptureFixture
) -> None:
    backend.failure = RuntimeError("/opt/ml/model/variables shard 3 corrupt")
    with caplog.at_level(logging.INFO):
        response = post_json(client, email(SECRET))
    assert response.status_code == 500
    assert response.json()["error"] == "ModelFailure"
    assert "/opt/ml" not in response.text
    assert "RuntimeError" not in response.text
    assert SECRET not in caplog.text


def test_wrong_model_output_shape_is_500(client: TestClient, backend: NumpyBackend) -> None:
    backend.bad_shape = True
    response = post_json(client, email())
    assert response.status_code == 500
    assert response.json()["error"] == "ModelFailure"


def test_non_finite_model_output_is_500(client: TestClient, backend: NumpyBackend) -> None:
    backend.weights[:] = np.nan
    response = post_json(client, email())
    assert response.status_code == 500
    assert response.json()["error"] == "ModelFailure"


def test_unexpected_errors_are_500_and_log_no_text(
    client: TestClient,
    classifier: EmailClassifier,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def explode(_: object) -> object:
        raise ValueError(f"cannot handle {SECRET}")

    monkeypatch.setattr(classifier, "clean", explode)
    with caplog.at_level(logging.INFO):
        response = post_json(client, email(SECRET))
    assert response.status_code == 500
    assert response.json()["error"] == "InternalError"
    assert SECRET not in response.text
    assert SECRET not in caplog.text
    assert "ValueError" in caplog.text


def test_each_request_logs_id_sizes_and_latency_but_never_text(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="convclass.serving"):
        post_json(client, email(f"<p>{SECRET}</p>", subject=SECRET), **{"x-request-id": "req-9"})
        post_json(client, {"emails": [{"subject": SECRET}]})
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("invocation ")]
    assert len(lines) == 2
    assert "request_id=req-9 status=200" in lines[0]
    assert "emails=1" in lines[0]
    assert "bytes=" in lines[0]
    assert "latency_ms=" in lines[0]
    assert "status=400" in lines[1]
    assert SECRET not in caplog.text


def test_classifier_rejects_nothing_it_was_given(classifier: EmailClassifier) -> None:
    emails = [
        InboundEmail(body=b"\xff\xfe broken \x80 bytes", content_type="text/plain"),
        InboundEmail(body="<div><p>unclosed <b>markup", subject=None),
        InboundEmail(body="", subject="only a subject"),
    ]
    predictions = classifier.classify(emails)
    assert len(predictions) == 3
    assert classifier.classify([]) == []


def test_backend_errors_become_model_failure(classifier: EmailClassifier, backend: NumpyBackend) -> None:
    backend.failure = MemoryError()
    with pytest.raises(ModelFailure, match="MemoryError"):
        classifier.classify([InboundEmail(body="x")])


def test_openapi_documents_both_content_types_and_every_status(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/invocations"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"application/json", "text/plain"}
    assert content["application/json"]["schema"]["$ref"] == "#/components/schemas/InvocationRequest"
    assert {"200", "400", "413", "415", "500", "503"} <= set(operation["responses"])
    schemas = spec["components"]["schemas"]
    assert {"EmailIn", "BatchIn", "InvocationRequest", "Prediction", "ErrorResponse"} <= set(schemas)
    assert "503" in spec["paths"]["/ping"]["get"]["responses"]


def test_request_ids_that_are_not_plain_tokens_are_replaced(client: TestClient) -> None:
    response = post_json(client, email(), **{"x-request-id": "a b<script>"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] != "a b<script>"
    assert len(response.headers["x-request-id"]) == 32


def test_models_without_a_threshold_never_auto_apply(client: TestClient) -> None:
    (prediction,) = post_json(client, email()).json()["predictions"]
    assert prediction["auto_apply"] is False


def test_calibrated_model_answers_scaled_probabilities_and_auto_apply(
    tokenizer: Tokenizer, backend: NumpyBackend
) -> None:
    plain = {"emails": [email(), email("<p>please refund my order</p>"), email("hello")]}

    def answer(confidence: Confidence | None) -> list[dict[str, object]]:
        classifier = EmailClassifier(
            tokenizer=tokenizer,
            backend=backend,
            labels=LABELS,
            max_length=MAX_LENGTH,
            model_version="7",
            confidence=confidence,
        )
        with TestClient(create_app(classifier, limits=LIMITS)) as client:
            predictions: list[dict[str, object]] = post_json(client, plain).json()["predictions"]
            return predictions

    raw = answer(None)
    scaled = answer(Confidence(temperature=3.0, target_precision=0.95, auto_apply_threshold=None))
    # Same ranking, softer probabilities (T > 1), still no threshold.
    for before, after in zip(raw, scaled, strict=True):
        assert [s["label"] for s in before["labels"]] == [s["label"] for s in after["labels"]]  # type: ignore[index]
        assert after["labels"][0]["probability"] < before["labels"][0]["probability"]  # type: ignore[index]
        assert after["auto_apply"] is False
    tops = sorted(p["labels"][0]["probability"] for p in scaled)  # type: ignore[index]
    # A threshold between the lowest and the highest top probability splits the batch.
    threshold = (tops[0] + tops[-1]) / 2
    split = answer(Confidence(temperature=3.0, target_precision=0.95, auto_apply_threshold=threshold))
    assert [p["auto_apply"] for p in split] == [
        p["labels"][0]["probability"] >= threshold  # type: ignore[index]
        for p in scaled
    ]
    assert True in [p["auto_apply"] for p in split]
    assert False in [p["auto_apply"] for p in split]
