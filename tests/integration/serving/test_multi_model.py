"""SageMaker's multi-model contract against the real app: per-tenant heads on one shared encoder, full models
beside them, 409/507/404, the same limits and errors as single-model mode, and tenants kept apart."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parents[2] / "support"))
from head_models import ENCODER_NAME, MAX_LENGTH, tiny_base_model, train_head
from serving_support import build_artifact

from convclass.artifacts import ARTIFACT_FILE, ArtifactInfo, write_json_model
from convclass.serving import (
    ModelRegistry,
    ServingLimits,
    SharedEncoder,
    create_multi_model_app,
    load_classifier,
    open_encoder,
)

pytestmark = pytest.mark.slow

LIMITS = ServingLimits(max_batch_emails=4, max_request_bytes=16_000, max_email_bytes=2_000, top_k=3)
EMAIL = {"subject": "Card declined", "body": "<p>My card payment was declined at the shop today.</p>"}
SECRET_PATH_PART = "tenant-acme-secret"


@pytest.fixture(scope="module")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/opt/ml/models as SageMaker fills it: two tenants' heads and a full SavedModel model."""
    root = tmp_path_factory.mktemp("opt_ml_models")
    work = tmp_path_factory.mktemp("work")
    base = tiny_base_model(work / "base")
    train_head(base, root / SECRET_PATH_PART / "model", "acme", seed=1)
    train_head(base, root / "globex" / "model", "globex", seed=2)
    train_head(base, root / "initech" / "model", "initech", seed=3, n=240, validation=True)
    build_artifact(root / "full" / "model")
    from convclass.training.head import export_encoder

    export_encoder(base, work / "encoder", name=ENCODER_NAME, max_length=MAX_LENGTH)
    shutil.copytree(work / "encoder", root.parent / "encoder")
    return root


@pytest.fixture(scope="module")
def encoder(models_root: Path) -> SharedEncoder:
    return open_encoder(models_root.parent / "encoder")


def _registry(models_root: Path, encoder: SharedEncoder, budget: int = 512 * 2**20) -> ModelRegistry:
    return ModelRegistry(
        memory_budget_bytes=budget,
        load_full=lambda artifact: load_classifier(artifact, backend="inprocess"),
        encoder=encoder,
        models_root=models_root,
    )


@pytest.fixture
def client(models_root: Path, encoder: SharedEncoder) -> Iterator[TestClient]:
    app = create_multi_model_app(_registry(models_root, encoder), limits=LIMITS)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def load(client: TestClient, name: str, url: Path) -> object:
    return client.post("/models", json={"model_name": name, "url": str(url)})


def invoke(client: TestClient, name: str, document: object = EMAIL, **headers: str):  # type: ignore[no-untyped-def]
    return client.post(
        f"/models/{name}/invoke",
        content=json.dumps(document),
        headers={"content-type": "application/json", **headers},
    )


def test_load_list_get_invoke_unload(
    client: TestClient, models_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = models_root / SECRET_PATH_PART / "model"
    loaded = load(client, "acme-1", url)
    assert loaded.status_code == 200, loaded.text  # type: ignore[attr-defined]
    assert loaded.json() == {"modelName": "acme-1", "modelUrl": str(url)}  # type: ignore[attr-defined]
    assert client.get("/ping").status_code == 200
    assert client.get("/models").json() == {"models": [{"modelName": "acme-1", "modelUrl": str(url)}]}
    assert client.get("/models/acme-1").json()["modelName"] == "acme-1"

    with caplog.at_level(logging.INFO, logger="convclass.serving"):
        answer = invoke(
            client, "acme-1", **{"X-Amzn-SageMaker-Target-Model": "acme/triage/run-1/model.tar.gz"}
        )
    assert answer.status_code == 200, answer.text
    assert "model=acme-1 target=acme/triage/run-1/model.tar.gz" in caplog.text
    prediction = answer.json()["predictions"][0]
    assert len(prediction["labels"]) == 3
    assert all(score["label"].startswith("acme.") for score in prediction["labels"])

    assert client.delete("/models/acme-1").status_code == 200
    assert client.get("/models/acme-1").status_code == 404
    assert client.get("/models").json() == {"models": []}
    assert client.delete("/models/acme-1").status_code == 404


BATCH = {
    "emails": [
        EMAIL,
        {"body": "Please refund the duplicate charge on my order."},
        {"body": "hello"},
        {"subject": "Address", "body": "I moved house and need to change my address."},
    ]
}


def test_auto_apply_follows_the_threshold_stored_with_the_model(
    client: TestClient, models_root: Path, tmp_path: Path
) -> None:
    calibrated = models_root / "initech" / "model"
    info = ArtifactInfo.model_validate_json((calibrated / ARTIFACT_FILE).read_text())
    assert info.confidence is not None
    assert load(client, "initech-1", calibrated).status_code == 200  # type: ignore[attr-defined]
    predictions = invoke(client, "initech-1", BATCH).json()["predictions"]
    threshold = info.confidence.auto_apply_threshold
    for prediction in predictions:
        top = prediction["labels"][0]["probability"]
        assert prediction["auto_apply"] is (threshold is not None and top >= threshold)

    # The same head with a threshold of 0 auto-applies everything and answers the same probabilities:
    # the app reads the threshold from artifact.json.
    lenient = models_root / "initech-lenient" / "model"
    shutil.copytree(calibrated, lenient)
    write_json_model(
        lenient / ARTIFACT_FILE,
        info.model_copy(
            update={"confidence": info.confidence.model_copy(update={"auto_apply_threshold": 0.0})}
        ),
    )
    assert load(client, "initech-2", lenient).status_code == 200  # type: ignore[attr-defined]
    answered = invoke(client, "initech-2", BATCH).json()["predictions"]
    assert [p["auto_apply"] for p in answered] == [True] * 4
    assert [p["labels"] for p in answered] == [p["labels"] for p in predictions]

    # A head trained without a validation split has no threshold: it never auto-applies.
    assert load(client, "acme-1", models_root / SECRET_PATH_PART / "model").status_code == 200  # type: ignore[attr-defined]
    assert [p["auto_apply"] for p in invoke(client, "acme-1", BATCH).json()["predictions"]] == [False] * 4


def test_loading_a_loaded_name_again_is_409(client: TestClient, models_root: Path) -> None:
    assert load(client, "acme-1", models_root / SECRET_PATH_PART / "model").status_code == 200  # type: ignore[attr-defined]
    again = load(client, "acme-1", models_root / "globex" / "model")
    assert again.status_code == 409  # type: ignore[attr-defined]
    assert again.json()["error"] == "ModelAlreadyLoaded"  # type: ignore[attr-defined]
    # The first model still answers, with its own labels.
    labels = invoke(client, "acme-1").json()["predictions"][0]["labels"]
    assert all(score["label"].startswith("acme.") for score in labels)


def test_over_the_memory_budget_is_507_until_a_model_is_unloaded(
    models_root: Path, encoder: SharedEncoder
) -> None:
    head_bytes = (models_root / "globex" / "model" / "head.npz").stat().st_size
    from convclass.serving.multimodel import HEAD_OVERHEAD_BYTES

    budget = int(1.5 * (head_bytes + HEAD_OVERHEAD_BYTES))  # one head fits, two do not
    app = create_multi_model_app(_registry(models_root, encoder, budget), limits=LIMITS)
    with TestClient(app) as client:
        assert load(client, "acme-1", models_root / SECRET_PATH_PART / "model").status_code == 200  # type: ignore[attr-defined]
        refused = load(client, "globex-1", models_root / "globex" / "model")
        assert refused.status_code == 507  # type: ignore[attr-defined]
        assert refused.json()["error"] == "InsufficientMemory"  # type: ignore[attr-defined]
        assert client.get("/models/globex-1").status_code == 404
        assert client.delete("/models/acme-1").status_code == 200
        assert load(client, "globex-1", models_root / "globex" / "model").status_code == 200  # type: ignore[attr-defined]


def test_unknown_model_is_404_naming_nothing_secret(client: TestClient, models_root: Path) -> None:
    assert load(client, "acme-1", models_root / SECRET_PATH_PART / "model").status_code == 200  # type: ignore[attr-defined]
    for response in (
        invoke(client, "globex-9"),
        client.get("/models/globex-9"),
        client.delete("/models/globex-9"),
    ):
        assert response.status_code == 404
        body = response.text
        assert response.json()["error"] == "ModelNotLoaded"
        for secret in ("acme", SECRET_PATH_PART, str(models_root), "globex-9"):
            assert secret not in body


def test_models_load_only_from_the_models_root_and_only_when_verified(
    client: TestClient, models_root: Path, tmp_path: Path
) -> None:
    outside = load(client, "x", tmp_path)
    assert outside.status_code == 400  # type: ignore[attr-defined]
    assert str(tmp_path) not in outside.text  # type: ignore[attr-defined]
    # A head trained on differently cleaned text is refused before it answers.
    stale = models_root / "stale" / "model"
    shutil.copytree(models_root / "globex" / "model", stale)
    info = ArtifactInfo.model_validate_json((stale / ARTIFACT_FILE).read_bytes())
    write_json_model(stale / ARTIFACT_FILE, info.model_copy(update={"cleaning_version": "1999.1"}))
    refused = load(client, "stale", stale)
    assert refused.status_code == 400  # type: ignore[attr-defined]
    assert refused.json()["error"] == "IncompatibleModel"  # type: ignore[attr-defined]
    # A head for another encoder is refused too.
    foreign = models_root / "foreign" / "model"
    shutil.copytree(models_root / "globex" / "model", foreign)
    assert info.encoder is not None
    other = info.encoder.model_copy(update={"digest": "f" * 64})
    write_json_model(foreign / ARTIFACT_FILE, info.model_copy(update={"encoder": other}))
    assert load(client, "foreign", foreign).json()["error"] == "IncompatibleModel"  # type: ignore[attr-defined]
    bad_name = client.post("/models", json={"model_name": "../etc", "url": str(foreign)})
    assert bad_name.status_code == 400
    assert client.get("/models").json() == {"models": []}


def test_full_models_load_beside_heads(client: TestClient, models_root: Path) -> None:
    assert load(client, "full-1", models_root / "full" / "model").status_code == 200  # type: ignore[attr-defined]
    assert load(client, "acme-1", models_root / SECRET_PATH_PART / "model").status_code == 200  # type: ignore[attr-defined]
    answer = invoke(client, "full-1")
    assert answer.status_code == 200
    assert answer.json()["predictions"][0]["model_version"] == "3"
    listed = client.get("/models", params={"page_size": 1}).json()
    assert [m["modelName"] for m in listed["models"]] == ["acme-1"]
    following = client.get(
        "/models", params={"page_size": 1, "next_page_token": listed["nextPageToken"]}
    ).json()
    assert [m["modelName"] for m in following["models"]] == ["full-1"]
    assert "nextPageToken" not in following


def test_invoke_keeps_single_model_limits_and_errors(client: TestClient, models_root: Path) -> None:
    assert load(client, "acme-1", models_root / SECRET_PATH_PART / "model").status_code == 200  # type: ignore[attr-defined]
    assert invoke(client, "acme-1", {"emails": [EMAIL] * 5}).status_code == 413
    assert invoke(client, "acme-1", {"body": 3}).json()["fields"] == ["body"]
    wrong_type = client.post("/models/acme-1/invoke", content=b"x", headers={"content-type": "image/png"})
    assert wrong_type.status_code == 415
    plain = client.post(
        "/models/acme-1/invoke", content=b"refund please", headers={"content-type": "text/plain"}
    )
    assert plain.status_code == 200
    batch = invoke(client, "acme-1", {"emails": [{**EMAIL, "id": str(i)} for i in range(4)]})
    assert [p["id"] for p in batch.json()["predictions"]] == ["0", "1", "2", "3"]


def test_two_tenants_on_one_server_never_receive_each_others_labels(
    client: TestClient, models_root: Path
) -> None:
    assert load(client, "acme-1", models_root / SECRET_PATH_PART / "model").status_code == 200  # type: ignore[attr-defined]
    assert load(client, "globex-1", models_root / "globex" / "model").status_code == 200  # type: ignore[attr-defined]
    batch = {"emails": [EMAIL, {"body": "I was charged twice, please refund"}, {"body": "change my address"}]}
    calls = ["acme-1", "globex-1"] * 20

    def call(name: str) -> tuple[str, list[str]]:
        predictions = invoke(client, name, batch).json()["predictions"]
        return name, [score["label"] for p in predictions for score in p["labels"]]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(call, calls))
    for name, labels in results:
        prefix = "acme." if name == "acme-1" else "globex."
        assert labels
        assert all(label.startswith(prefix) for label in labels), (name, labels)
