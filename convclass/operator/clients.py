"""One stack's outputs and its boto3 clients: what every part of the operator builds on.

Clients are created on first use, so an operator that only reads one service never needs the others'
endpoints, and boto3's credential problems are named where a request is made (that is where boto3 finds them).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.exceptions import NoCredentialsError, NoRegionError

from convclass.errors import ConvclassError
from convclass.stack import StackOutputs


class OperatorError(ConvclassError):
    """A request to AWS that cannot be carried out, with a message meant for the operator."""


class NoCredentials(OperatorError):
    """boto3 found no AWS credentials or region."""


@contextmanager
def credentials() -> Iterator[None]:
    """boto3 finds credentials only when a request is made: name the problem there."""
    try:
        yield
    except NoCredentialsError as exc:
        raise NoCredentials(
            "no AWS credentials found: configure a profile (AWS_PROFILE), environment credentials or SSO"
        ) from exc


class StackClients:
    """The stack outputs and lazily created clients; construct with the outputs (and a boto3 session)."""

    def __init__(self, outputs: StackOutputs, *, session: Any = None) -> None:
        self.outputs = outputs
        self._session = session or boto3.Session(region_name=outputs.region)
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            try:
                self._clients[service] = self._session.client(service)
            except NoRegionError as exc:
                raise NoCredentials(
                    "no AWS region configured: set AWS_REGION or the stack outputs' 'region'"
                ) from exc
        return self._clients[service]

    def _call(self, service: str, operation: str, **kwargs: Any) -> Any:
        with credentials():
            return getattr(self.client(service), operation)(**kwargs)
