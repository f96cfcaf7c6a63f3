"""Both model backends over a real SavedModel: in-process TensorFlow, and TF Serving's REST API (faked)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serving_support import MODEL_VERSION, FakeTFServing, expected_probabilities

from convclass.errors import IncompatibleModel, ModelFailure
from convclass.serving import EmailClassifier, InboundEmail, create_app, load_classifier, open_artifact
from convclass.serving.backends import InProcessBackend, TFServingRestBackend
from convclass_local.generator import generate_emails


def inbound(n: int, seed: int) -> list[InboundEmail]:
    return [
        InboundEmail(body=e["body"], subject=e["subject"], content_type=e["body_content_type"])
        for e in generate_emails(n, seed=seed)
    ]


@pytest.fixture(scope="module")
def inprocess(artifact_dir: Path) -> Iterator[EmailClassifier]:
    classifier = load_classifier(open_artifact(artifact_dir))
    yield classifier
    classifier.close()


@pytest.fixture
def fake(artifact_dir: Path) -> Iterator[FakeTFServing]:
    # The fake runs the same SavedModel: REST answers can be compared with in-process ones number for number.
    model = InProcessBackend(artifact_dir / "model" / str(MODEL_VERSION))
    server = FakeTFServing(predict=model.predict).start()
    yield server
    server.stop()


def test_inprocess_backend_computes_the_saved_model(
    inprocess: EmailClassifier, logit_table: np.ndarray
) -> None:
    emails = inbound(20, seed=11)
    encoded = inprocess.encode(inprocess.clean(emails))
    probabilities = inprocess.probabilities(encoded)
    expected = expected_probabilities(logit_table, encoded["input_ids"], encoded["attention_mask"])
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    predictions = inprocess.classify(emails, top_k=2)
    for prediction, row in zip(predictions, expected, strict=True):
        assert prediction.labels[0].label == inprocess.labels[int(row.argmax())]
        assert prediction.model_version == str(MODEL_VERSION)


def test_tfserving_backend_answers_exactly_like_inprocess(
    artifact_dir: Path, inprocess: EmailClassifier, fake: FakeTFServing
) -> None:
    rest = load_classifier(open_artifact(artifact_dir), backend="tfserving", tfserving_url=fake.url)
    emails = inbound(70, seed=12)  # more than one model batch (64): two predict calls
    fake.requests.clear()
    via_rest = rest.classify(emails)
    assert len(fake.requests) == 2
    assert fake.requests[0]["signature_name"] == "serving_default"
    assert len(fake.requests[0]["inputs"]["input_ids"]) == 64
    assert [p.model_dump() for p in via_rest] == [p.model_dump() for p in inprocess.classify(emails)]
    rest.close()


def test_tfserving_backend_waits_until_the_model_is_available(fake: FakeTFServing) -> None:
    fake.state = "LOADING"
    backend = TFServingRestBackend(fake.url, "model", MODEL_VERSION)
    assert not backend.healthy()
    timer = threading.Timer(0.3, lambda: setattr(fake, "state", "AVAILABLE"))
    timer.start()
    backend.wait_until_available(10, poll_s=0.05)
    assert backend.healthy()
    backend.close()


def test_tfserving_backend_gives_up_on_a_model_that_never_loads(fake: FakeTFServing) -> None:
    fake.state = "LOADING"
    backend = TFServingRestBackend(fake.url, "model", MODEL_VERSION)
    with pytest.raises(ModelFailure, match="not make model version 3 available"):
        backend.wait_until_available(0.2, poll_s=0.05)
    wrong_version = TFServingRestBackend(fake.url, "model", MODEL_VERSION + 1)
    assert not wrong_version.healthy()


@pytest.mark.parametrize("failure", ["http500", "http404", "garbage", "unreachable", "wrong_rows"])
def test_tfserving_failures_become_model_failure(fake: FakeTFServing, failure: str) -> None:
    ids = np.ones((2, 32), dtype=np.int32)
    url, name = fake.url, "model"
    if failure == "http500":
        fake.fail_with = 500
    elif failure == "http404":
        name = "other"
    elif failure == "garbage":
        fake.garbage = True
    elif failure == "unreachable":
        fake.stop()
    else:
        fake.predict = lambda i, m: np.full((1, 10), 0.1, dtype=np.float32)
    backend = TFServingRestBackend(url, name, MODEL_VERSION, timeout_s=2)
    with pytest.raises(ModelFailure) as raised:
        backend.predict(ids, ids)
    assert "/models/model/3" not in str(raised.value)  # TF Serving's own error text is not passed on


def test_app_on_tfserving_pings_503_until_tfserving_has_the_model(
    artifact_dir: Path, fake: FakeTFServing
) -> None:
    fake.state = "LOADING"
    artifact = open_artifact(artifact_dir)
    app = create_app(loader=lambda: load_classifier(artifact, backend="tfserving", tfserving_url=fake.url))
    with TestClient(app) as client:
        assert client.get("/ping").status_code == 503
        fake.state = "AVAILABLE"
        for _ in range(100):
            if client.get("/ping").status_code == 200:
                break
            threading.Event().wait(0.05)
        assert client.get("/ping").json() == {"status": "ready", "model_version": str(MODEL_VERSION)}
        answer = client.post("/invocations", json={"body": "<p>Where is my order?</p>"})
        assert answer.status_code == 200
        fake.fail_with = 500
        failed = client.post("/invocations", json={"body": "<p>Where is my order?</p>"})
        assert failed.status_code == 500
        assert failed.json()["error"] == "ModelFailure"
        fake.stop()
        assert client.get("/ping").status_code == 503  # TF Serving gone: SageMaker must see it


def test_incompatible_cleaning_version_is_refused(artifact_dir: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(artifact_dir, tmp_path / "artifact")
    info = (
        (copy / "artifact.json")
        .read_text()
        .replace(open_artifact(artifact_dir).info.cleaning_version, "1999.1")
    )
    (copy / "artifact.json").write_text(info)
    with pytest.raises(IncompatibleModel, match=r"cleaning version '1999\.1'"):
        open_artifact(copy)
