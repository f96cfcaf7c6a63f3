"""The console's Lambda handlers: HTTP API (payload 2.0) events through the real app and the authorizer."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from convclass.console.app import ConsoleSettings, create_app
from convclass.console.auth import SESSION_COOKIE, TokenVerifier
from convclass.console.aws import asgi_handler, authorize
from convclass.operator import Operator
from convclass.stack import StackOutputs

VERIFIER = TokenVerifier(secret=b"k" * 32)


def _event(method: str, path: str, **extra: Any) -> dict[str, Any]:
    return {
        "version": "2.0",
        "rawPath": path,
        "rawQueryString": extra.pop("query", ""),
        "headers": {"host": "console.example.com", **extra.pop("headers", {})},
        "requestContext": {"http": {"method": method, "sourceIp": "192.0.2.1"}},
        **extra,
    }


@pytest.fixture
def handle(fake_aws_credentials: None) -> Iterator[Any]:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        session.client("s3").create_bucket(Bucket="convclass-console-test")
        machine = session.client("stepfunctions").create_state_machine(
            name="convclass-test-training",
            definition='{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}',
            roleArn="arn:aws:iam::123456789012:role/states",
        )["stateMachineArn"]
        outputs = StackOutputs(
            region="us-east-1", data_bucket="convclass-console-test", training_state_machine_arn=machine
        )
        app = create_app(ConsoleSettings(operator=Operator(outputs, session=session), verifier=VERIFIER))
        yield asgi_handler(app)


def test_pages_need_a_token_and_sign_in_sets_a_secure_cookie(handle: Any) -> None:
    assert handle(_event("GET", "/healthz"), None)["statusCode"] == 200
    refused = handle(_event("GET", "/"), None)
    assert refused["statusCode"] == 401
    assert refused["headers"]["www-authenticate"] == "Bearer"
    token = VERIFIER.issue("acme", "alice")
    signed_in = handle(_event("GET", "/login", query=f"token={token}"), None)
    assert signed_in["statusCode"] == 303
    (cookie,) = signed_in["cookies"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    page = handle(_event("GET", "/", cookies=[f"{SESSION_COOKIE}={token}"]), None)
    assert page["statusCode"] == 200
    assert "convclass · acme" in page["body"]


def test_form_posts_arrive_with_their_body(handle: Any) -> None:
    token = VERIFIER.issue("acme", "alice")
    body = base64.b64encode(b"csrf=forged").decode()
    answer = handle(
        _event(
            "POST",
            "/c/intent/consent/withdraw",
            headers={"authorization": f"Bearer {token}", "content-type": "application/x-www-form-urlencoded"},
            body=body,
            isBase64Encoded=True,
        ),
        None,
    )
    assert answer["statusCode"] == 401  # the CSRF token was read from the body and refused


def test_the_authorizer_lets_only_valid_tokens_through() -> None:
    token = VERIFIER.issue("acme", "alice")
    assert authorize(VERIFIER, _event("GET", "/", cookies=[f"{SESSION_COOKIE}={token}"])) == {
        "isAuthorized": True,
        "context": {"tenant": "acme", "sub": "alice"},
    }
    assert authorize(VERIFIER, _event("GET", "/", headers={"authorization": f"Bearer {token}"}))[
        "isAuthorized"
    ]
    assert authorize(VERIFIER, _event("GET", "/")) == {"isAuthorized": False}
    forged = TokenVerifier(secret=b"x" * 32).issue("acme", "mallory")
    assert authorize(VERIFIER, _event("GET", "/", cookies=[f"{SESSION_COOKIE}={forged}"])) == {
        "isAuthorized": False
    }
