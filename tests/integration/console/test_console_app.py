"""The console app over moto: authentication, tenant scoping of every object, CSRF, idempotent decisions.

Two tenants whose ids share a prefix (``acme`` and ``acme-shop``, so execution names share one too) each get a
run, a model (a real archive with metrics, artifact info and the training report), its dataset manifest and a
consent record; ``acme`` also has captured feedback and an automatic run. The pages render for each and every
URL naming one tenant's object answers 404 to the other's token.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from convclass import layout
from convclass.artifacts import (
    ArtifactInfo,
    DataSizes,
    LabelMetrics,
    ModelMetrics,
    pack_model_dir,
    write_json_model,
)
from convclass.console.app import GUESSED_FORM, ConsoleSettings, create_app, page_urls, scoped_urls
from convclass.console.auth import AUDIENCE, ISSUER, TokenVerifier
from convclass.console.data import TenantView, parse_epochs
from convclass.console.inference import archive_events, read_stats
from convclass.events import (
    EMAIL_CLASSIFICATION_FAILED,
    EMAIL_CLASSIFIED,
    DataSource,
    TrainingRunRequest,
    execution_name,
)
from convclass.export.consent import ConsentRecord, record_consent
from convclass.feedback.events import LabelConfirmed, PredictionRecord
from convclass.feedback.store import FeedbackStore
from convclass.operator import Operator
from convclass.stack import StackOutputs
from convclass.training.report import write_report

sys.path.insert(0, str(Path(__file__).parents[2] / "support"))
from feedback_support import manifest

BUCKET = "convclass-test-data"
SECRET = b"s" * 32
LABELS = ("billing", "refund", "shipping")
TENANTS = (("acme", "intent"), ("acme-shop", "topic"))
#: acme's automatic run: its reason is what the feedback page must show to acme, and to nobody else.
AUTOMATIC_REASON = "unknown-labels: crypto-refund (1)"
TRAIN_COUNTS = {"billing": 40, "refund": 40, "shipping": 20}


def _metrics() -> ModelMetrics:
    return ModelMetrics(
        accuracy=0.81,
        macro_f1=0.79,
        weighted_f1=0.8,
        expected_calibration_error=0.04,
        per_label={
            "billing": LabelMetrics(precision=0.9, recall=0.8, f1=0.85, support=10),
            "refund": LabelMetrics(precision=0.7, recall=0.9, f1=0.79, support=10),
            "shipping": LabelMetrics(precision=0.3, recall=0.2, f1=0.24, support=5),
        },
        labels=LABELS,
        confusion_matrix=((8, 2, 0), (1, 9, 0), (2, 2, 1)),
        data=DataSizes(train=100, validation=20, test=25, n_labels=3),
        training_seconds=12.5,
        epochs=2,
        architecture="cnn",
    )


def _model_archive(tmp: Path) -> bytes:
    root = tmp / "model"
    info = ArtifactInfo(model_version=1, architecture="cnn", max_length=32, n_labels=3, cleaning_version="c9")
    write_json_model(root / "artifact.json", info)
    write_json_model(root / "metrics.json", _metrics())
    history = [
        {"epoch": 1, "loss": 1.2, "accuracy": 0.5, "val_loss": 1.0, "val_accuracy": 0.6},
        {"epoch": 2, "loss": 0.7, "accuracy": 0.8, "val_loss": 0.8, "val_accuracy": 0.75},
    ]
    write_report(root / "report", history=history, metrics=_metrics(), info=info)
    return pack_model_dir(root, tmp / "model.tar.gz").read_bytes()


@pytest.fixture
def world(fake_aws_credentials: None, tmp_path: Path) -> Iterator[dict[str, Any]]:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        s3, sfn = session.client("s3"), session.client("stepfunctions")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        key = session.client("kms").create_key()["KeyMetadata"]["Arn"]
        machine = sfn.create_state_machine(
            name="convclass-test-training",
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/states",
        )["stateMachineArn"]
        outputs = StackOutputs(region="us-east-1", data_bucket=BUCKET, training_state_machine_arn=machine)
        operator = Operator(outputs, session=session)
        archive = _model_archive(tmp_path)
        runs: dict[str, str] = {}
        for tenant, classifier in TENANTS:
            request = TrainingRunRequest(
                tenant=tenant,
                classifier=classifier,
                label_field="intent",
                data_source=DataSource(kind="files", uri=f"s3://{BUCKET}/sources/{tenant}/"),
                business_key="first",
            )
            operator.start_training(request)
            name = execution_name(request)
            runs[tenant] = name
            where = layout.ClassifierLayout(tenant, classifier)
            run_id = layout.run_id_for_execution(name)
            s3.put_object(
                Bucket=BUCKET,
                Key=f"{where.model_output_prefix(run_id)}job-1/output/model.tar.gz",
                Body=archive,
            )
            record_consent(
                s3,
                BUCKET,
                where,
                ConsentRecord(approved=True, approved_by="someone", approved_at="2026-01-01T00:00:00Z"),
                kms_key_arn=None,
            )
            champion = {
                "run_id": run_id,
                "model_name": layout.model_name(tenant, classifier, run_id),
                "endpoint_config_name": layout.endpoint_config_name(tenant, classifier, run_id),
                "model_artifacts": f"s3://{BUCKET}/{where.model_output_prefix(run_id)}job-1/output/model.tar.gz",
                "training_job_name": "job-1",
                "metrics": {"accuracy": 0.81, "macro_f1": 0.79},
                "execution": operator.execution_arn(name),
                "deployed_at": "2026-01-02T00:00:00Z",
            }
            s3.put_object(Bucket=BUCKET, Key=where.champion_key, Body=json.dumps(champion).encode())
            s3.put_object(
                Bucket=BUCKET,
                Key=where.dataset_manifest_key(run_id),
                Body=manifest(tenant, classifier, run_id, TRAIN_COUNTS).model_dump_json().encode(),
            )
            archive_events(
                s3,
                BUCKET,
                kms_key_arn=None,
                events=[
                    {
                        "detail-type": EMAIL_CLASSIFIED,
                        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "detail": {
                            "tenant": tenant,
                            "classifier": classifier,
                            "conversation_id": "c1",
                            "message_id": "m1",
                            "prediction": {
                                "predictions": [{"labels": [{"label": "refund", "probability": 0.93}]}]
                            },
                        },
                    },
                    {
                        "detail-type": EMAIL_CLASSIFICATION_FAILED,
                        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "detail": {
                            "tenant": tenant,
                            "classifier": classifier,
                            "message_id": "m2",
                            "error": "ModelError",
                            "cause": "not kept",
                        },
                    },
                ],
            )
        _feedback(FeedbackStore(s3, BUCKET, key), *TENANTS[0])
        automatic = TrainingRunRequest(
            tenant=TENANTS[0][0],
            classifier=TENANTS[0][1],
            label_field="intent",
            data_source=DataSource(kind="files", uri=f"s3://{BUCKET}/sources/{TENANTS[0][0]}/"),
            business_key="feedback-2026-01-03",
            reason=AUTOMATIC_REASON,
        )
        operator.start_training(automatic)
        verifier = TokenVerifier(secret=SECRET)
        app = create_app(ConsoleSettings(operator=operator, verifier=verifier, secure_cookie=False))
        yield {"operator": operator, "verifier": verifier, "client": TestClient(app), "runs": runs, "s3": s3}


def _feedback(store: FeedbackStore, tenant: str, classifier: str) -> None:
    """Three conversations an hour ago: one agreed, one corrected, one with a label the model does not
    know."""
    when = datetime.now(UTC) - timedelta(hours=1)
    for conversation, predicted, final in (
        ("f1", "refund", "refund"),
        ("f2", "refund", "billing"),
        ("f3", "billing", "crypto-refund"),
    ):
        store.put(
            PredictionRecord(
                event_id=f"p-{conversation}",
                tenant=tenant,
                classifier=classifier,
                conversation_id=conversation,
                message_id=f"m-{conversation}",
                predicted_at=when,
                model_version="1",
                labels=[predicted, "shipping"],
                scores=[0.8, 0.1],
            )
        )
        store.put(
            LabelConfirmed(
                event_id=f"c-{conversation}",
                tenant=tenant,
                classifier=classifier,
                conversation_id=conversation,
                label=final,
                confirmed_at=when + timedelta(minutes=5),
                agent="agent-1",
            )
        )


def _client(world: dict[str, Any], tenant: str) -> TestClient:
    client: TestClient = world["client"]
    client.headers["Authorization"] = "Bearer " + world["verifier"].issue(tenant, f"user-of-{tenant}")
    return client


def test_every_page_renders_for_its_tenant(world: dict[str, Any]) -> None:
    for tenant, classifier in TENANTS:
        view = TenantView(world["operator"], tenant)
        urls = list(page_urls(view))
        assert f"/runs/{world['runs'][tenant]}" in urls
        assert any(url.startswith(f"/c/{classifier}/models/") for url in urls)
        client = _client(world, tenant)
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, (url, response.text[:300])
            assert "Content-Security-Policy" in response.headers
        card = client.get(next(url for url in urls if "/models/" in url)).text
        assert "shipping" in card
        assert "81.0 %" in card
        assert "<svg" in card
        assert "c9" in card  # cleaning version
        inference = client.get(f"/c/{classifier}/inference").text
        assert "1 emails in the last 14 days" in inference
        assert "ModelError: 1" in inference
        assert "not kept" not in inference


def test_another_tenants_objects_answer_404(world: dict[str, Any]) -> None:
    for (owner, _), (other, _) in (TENANTS, TENANTS[::-1]):
        owned = list(scoped_urls(TenantView(world["operator"], owner)))
        assert len(owned) >= 4
        client = _client(world, other)
        csrf = world["verifier"].csrf_token(world["verifier"].verify(client.headers["Authorization"][7:]))
        for method, url in owned:
            if method == "POST":
                response = client.post(url, data={"csrf": csrf, **GUESSED_FORM})
            else:
                response = client.get(url)
            assert response.status_code == 404, (other, url)
        # The other tenant's pages do not list the owner's runs, although their names share a prefix.
        assert world["runs"][owner] not in client.get("/runs").text
        assert world["runs"][owner] not in client.get("/").text


def test_the_feedback_page_shows_the_tenants_own_agreement_drift_and_automatic_runs(
    world: dict[str, Any],
) -> None:
    (owner, classifier), (other, other_classifier) = TENANTS
    page = _client(world, owner).get(f"/c/{classifier}/feedback")
    assert page.status_code == 200, page.text[:300]
    text = page.text
    assert "3 (3 with a prediction)" in text
    assert "33.3 %" in text  # top-1: f1 of f1, f2, f3
    assert "crypto-refund: 1" in text
    assert AUTOMATIC_REASON in text
    assert "feedback-2026-01-03" in text
    # The other tenant: the owner's page is a 404, and its own page has none of the owner's figures.
    client = _client(world, other)
    assert client.get(f"/c/{classifier}/feedback").status_code == 404
    own = client.get(f"/c/{other_classifier}/feedback")
    assert own.status_code == 200
    assert "0 (0 with a prediction)" in own.text
    for leaked in ("crypto-refund", AUTOMATIC_REASON, "feedback-2026-01-03", "33.3 %"):
        assert leaked not in own.text
    assert "No run was started by feedback." in own.text
    # Reading the page wrote nothing (the console reads only).
    listed = world["s3"].list_objects_v2(Bucket=BUCKET, Prefix="tenants/")["Contents"]
    assert not [item["Key"] for item in listed if "/feedback/deployed/" in item["Key"]]


def test_requests_without_a_valid_token_are_refused(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    assert client.get("/").status_code == 401
    now = int(time.time())
    claims = {"sub": "x", "tenant": "acme", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 60}
    for token in (
        jwt.encode(claims, b"w" * 32, algorithm="HS256"),  # another key
        jwt.encode({**claims, "exp": now - 3600}, SECRET, algorithm="HS256"),  # expired
        jwt.encode({**claims, "aud": "someone-else"}, SECRET, algorithm="HS256"),
        jwt.encode({**claims, "tenant": "../acme"}, SECRET, algorithm="HS256"),
        jwt.encode({k: v for k, v in claims.items() if k != "tenant"}, SECRET, algorithm="HS256"),
        jwt.encode(claims, None, algorithm="none"),
    ):
        assert client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_login_sets_a_strict_http_only_cookie(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    token = world["verifier"].issue("acme", "user")
    response = client.get("/login", params={"token": token}, follow_redirects=False)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert client.get("/").status_code == 200


def test_withdrawing_consent_needs_csrf_is_logged_and_idempotent(
    world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    client = _client(world, "acme")
    principal = world["verifier"].verify(client.headers["Authorization"][7:])
    assert client.post("/c/intent/consent/withdraw", data={"csrf": "forged"}).status_code == 401
    assert TenantView(world["operator"], "acme").consent("intent").approved  # type: ignore[union-attr]
    csrf = world["verifier"].csrf_token(principal)
    with caplog.at_level(logging.INFO, logger="convclass.console.audit"):
        first = client.post("/c/intent/consent/withdraw", data={"csrf": csrf}, follow_redirects=False)
        second = client.post("/c/intent/consent/withdraw", data={"csrf": csrf}, follow_redirects=False)
    assert first.headers["location"].endswith("notice=withdrawn")
    assert second.headers["location"].endswith("notice=already-withdrawn")
    consent = TenantView(world["operator"], "acme").consent("intent")
    assert consent is not None
    assert consent.revoked_at is not None
    assert consent.approved_by == "console:user-of-acme"
    logged = [json.loads(record.getMessage()) for record in caplog.records]
    assert [entry["outcome"] for entry in logged] == ["withdrawn", "already-withdrawn"]
    assert all(entry["actor"] == "user-of-acme" and entry["tenant"] == "acme" for entry in logged)
    # The other tenant's consent is untouched.
    assert TenantView(world["operator"], "acme-shop").consent("topic").revoked_at is None  # type: ignore[union-attr]


def test_an_answer_for_a_gate_no_longer_pending_changes_nothing(world: dict[str, Any]) -> None:
    client = _client(world, "acme")
    csrf = world["verifier"].csrf_token(world["verifier"].verify(client.headers["Authorization"][7:]))
    response = client.post(
        f"/runs/{world['runs']['acme']}/answer",
        data={"csrf": csrf, "decision": "approve", "approval": "0" * 32},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"].endswith("notice=stale")


def test_inference_stats_count_only_the_classifiers_events(world: dict[str, Any]) -> None:
    stats = read_stats(world["s3"], BUCKET, layout.ClassifierLayout("acme", "intent"))
    assert (stats.classified, stats.failed, dict(stats.labels)) == (1, 1, {"refund": 1})
    assert stats.confidence[9] == 1
    assert read_stats(world["s3"], BUCKET, layout.ClassifierLayout("acme", "other")).classified == 0


def test_epochs_come_from_the_training_report(tmp_path: Path) -> None:
    info = ArtifactInfo(model_version=1, architecture="cnn", max_length=32, n_labels=3, cleaning_version="c9")
    history = [{"epoch": 1, "loss": 1.25, "accuracy": 0.5}, {"epoch": 2, "loss": 0.5, "accuracy": 0.75}]
    write_report(tmp_path, history=history, metrics=_metrics(), info=info)
    parsed = parse_epochs((tmp_path / "summary.md").read_text())
    assert parsed == [
        {"epoch": 1.0, "loss": 1.25, "accuracy": 0.5},
        {"epoch": 2.0, "loss": 0.5, "accuracy": 0.75},
    ]


def test_roll_back_starts_one_deploy_only_run_of_the_earlier_model(world: dict[str, Any]) -> None:
    s3, operator = world["s3"], world["operator"]
    where = layout.ClassifierLayout("acme", "intent")
    first = json.loads(s3.get_object(Bucket=BUCKET, Key=where.champion_key)["Body"].read())
    later_run = "acme-intent-later"
    archive = f"s3://{BUCKET}/{where.model_output_prefix(later_run)}job-2/output/model.tar.gz"
    s3.put_object(
        Bucket=BUCKET,
        Key=where.champion_key,
        Body=json.dumps(
            {**first, "run_id": later_run, "model_artifacts": archive, "deployed_at": "2026-02-01"}
        ),
    )
    client = _client(world, "acme")
    csrf = world["verifier"].csrf_token(world["verifier"].verify(client.headers["Authorization"][7:]))
    history = client.get("/c/intent/history").text
    assert f"Roll back to {first['run_id']}" in history
    assert f"Roll back to {later_run}" not in history  # the model serving now

    answers = [
        client.post("/c/intent/rollback", data={"csrf": csrf, "model": model}, follow_redirects=False)
        for model in (first["run_id"], first["run_id"], later_run)
    ]
    assert [a.headers["location"].rsplit("=", 1)[1] for a in answers] == [
        "rollback-started",
        "rollback-running",
        "already-serving",
    ]
    rollbacks = [run for run in operator.runs("acme", "intent") if "rollback" in run.name]
    assert len(rollbacks) == 1
    request = TrainingRunRequest.model_validate(operator.describe_run(rollbacks[0].arn).input)
    assert request.redeploy is not None
    assert request.redeploy.run_id == first["run_id"]
    assert request.redeploy.model_artifacts == first["model_artifacts"]
    assert (request.options.export_approval, request.options.deploy_approval) == (False, False)
    assert client.post("/c/intent/rollback", data={"csrf": csrf, "model": "nope"}).status_code == 404


def test_a_shared_classifier_shows_shared_hosting_not_a_missing_endpoint(world: dict[str, Any]) -> None:
    s3 = world["s3"]
    where = layout.ClassifierLayout("acme-shop", "topic")
    dedicated = s3.get_object(Bucket=BUCKET, Key=where.champion_key)["Body"].read()
    client = _client(world, "acme-shop")
    assert "shared (served with other classifiers" not in client.get("/").text
    record = json.loads(dedicated)
    shared = {
        **{k: v for k, v in record.items() if k not in ("model_name", "endpoint_config_name")},
        "hosting": "shared",
        "endpoint_name": "convclass-test-shared",
        "target_model": f"acme-shop/topic/{record['run_id']}/model.tar.gz",
    }
    s3.put_object(Bucket=BUCKET, Key=where.champion_key, Body=json.dumps(shared).encode())
    try:
        overview = client.get("/").text
    finally:
        s3.put_object(Bucket=BUCKET, Key=where.champion_key, Body=dedicated)
    assert "shared (served with other classifiers, on demand)" in overview
    # The route's internals (the shared endpoint, the TargetModel key) are the operator's, not the page's.
    assert "convclass-test-shared" not in overview
    assert "model.tar.gz" not in overview
