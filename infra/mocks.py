"""Run the Pulumi program offline: Pulumi's unit-test mocks stand in for the engine and the AWS provider.

Every resource the program declares is recorded with its inputs, and given realistic ids and ARNs so that
everything computed from them (state machine definitions, IAM documents, dashboards) is computed for real.
Used by ``python -m infra.synth`` and by the tests; no Pulumi CLI, plugin or AWS account is involved.
"""

from __future__ import annotations

import hashlib
import json
import runpy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml  # type: ignore[import-untyped]
from pulumi.runtime import rpc

PROGRAM = Path(__file__).resolve().parent / "__main__.py"
REPO_ROOT = PROGRAM.parents[1]
MOCK_ACCOUNT = "123456789012"
REDACTED = "[secret]"
# What the mocked ECR login returns: a stand-in that `make synth` must never print.
MOCK_REGISTRY_PASSWORD = "mock-registry-password"  # noqa: S105 - not a credential


@dataclass
class RecordedResource:
    """One resource as the program declared it: ``inputs`` are its arguments (wire names, camelCase),
    ``outputs`` what the mock provider answered (inputs plus ids/ARNs)."""

    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    custom: bool
    secret_paths: list[str] = field(default_factory=list)


@dataclass
class Recording:
    resources: list[RecordedResource]
    stack_outputs: dict[str, Any]
    project: str
    stack: str

    def of_type(self, type_token: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_token]


def _unwrap_secrets(value: Any, path: str, found: list[str]) -> Any:
    if rpc.is_rpc_secret(value):
        found.append(path or "$")
        return _unwrap_secrets(rpc.unwrap_rpc_secret(value), path, found)
    if isinstance(value, dict):
        return {k: _unwrap_secrets(v, f"{path}.{k}" if path else k, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    return value


def _digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


class RecordingMocks(pulumi.runtime.Mocks):
    """Answers like AWS would (ids, ARNs, URLs) and records every registration."""

    def __init__(self, region: str, account: str = MOCK_ACCOUNT) -> None:
        self.region = region
        self.account = account
        self.resources: list[RecordedResource] = []

    def _arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if regional else ''}:{self.account}:{resource}"

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        secret_paths: list[str] = []
        inputs = _unwrap_secrets(dict(args.inputs), "", secret_paths)
        outputs = dict(args.inputs)
        name = inputs.get("name") or args.name
        computed = self._computed(args.typ, args.name, name, inputs)
        outputs.update(computed)
        outputs.setdefault("tagsAll", inputs.get("tags", {}))
        self.resources.append(
            RecordedResource(
                type=args.typ,
                name=args.name,
                inputs=inputs,
                outputs=_unwrap_secrets(outputs, "", []),
                custom=bool(args.custom),
                secret_paths=secret_paths,
            )
        )
        return str(computed.get("id", f"{args.name}-id")), outputs

    def _computed(self, typ: str, logical: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        token = typ.split(":")[-1]
        if typ == "aws:kms/key:Key":
            key_id = str(_digest(logical))[:8] + "-0000-4000-8000-" + str(_digest(logical))[8:20]
            return {"id": key_id, "keyId": key_id, "arn": self._arn("kms", f"key/{key_id}")}
        if typ == "aws:s3/bucket:Bucket":
            bucket = inputs.get("bucket") or f"{inputs.get('bucketPrefix', logical)}{_digest(logical)[:12]}"
            return {"id": bucket, "bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}
        if typ == "aws:ecr/repository:Repository":
            return {
                "id": name,
                "name": name,
                "arn": self._arn("ecr", f"repository/{name}"),
                "registryId": self.account,
                "repositoryUrl": f"{self.account}.dkr.ecr.{self.region}.amazonaws.com/{name}",
            }
        if typ == "aws:iam/role:Role":
            return {"id": name, "name": name, "arn": f"arn:aws:iam::{self.account}:role/{name}"}
        if typ == "aws:lambda/function:Function":
            return {
                "id": name,
                "name": name,
                "arn": self._arn("lambda", f"function:{name}"),
                "invokeArn": self._arn("lambda", f"function:{name}"),
            }
        if typ == "aws:cloudwatch/logGroup:LogGroup":
            return {"id": name, "name": name, "arn": self._arn("logs", f"log-group:{name}")}
        if typ == "aws:sqs/queue:Queue":
            url = f"https://sqs.{self.region}.amazonaws.com/{self.account}/{name}"
            return {"id": url, "name": name, "url": url, "arn": self._arn("sqs", name)}
        if typ == "aws:sns/topic:Topic":
            arn = self._arn("sns", name)
            return {"id": arn, "name": name, "arn": arn}
        if typ == "aws:cloudwatch/eventBus:EventBus":
            return {"id": name, "name": name, "arn": self._arn("events", f"event-bus/{name}")}
        if typ == "aws:cloudwatch/eventRule:EventRule":
            bus = inputs.get("eventBusName", "default")
            return {"id": f"{bus}/{name}", "name": name, "arn": self._arn("events", f"rule/{bus}/{name}")}
        if typ == "aws:sfn/stateMachine:StateMachine":
            arn = self._arn("states", f"stateMachine:{name}")
            return {"id": arn, "name": name, "arn": arn}
        if typ == "aws:cloudwatch/dashboard:Dashboard":
            return {
                "id": inputs["dashboardName"],
                "dashboardArn": self._arn("cloudwatch", "dashboard/x", regional=False),
            }
        if typ == "aws:apigatewayv2/api:Api":
            api_id = _digest(logical)[:10]
            return {
                "id": api_id,
                "arn": f"arn:aws:apigateway:{self.region}::/apis/{api_id}",
                "apiEndpoint": f"https://{api_id}.execute-api.{self.region}.amazonaws.com",
                "executionArn": self._arn("execute-api", api_id),
            }
        if typ == "docker-build:index:Image":
            return {"id": logical, "digest": "sha256:" + _digest(logical)}
        service = typ.split(":")[1].split("/")[0]
        return {"id": f"{name}-id", "arn": self._arn(service, f"{token.lower()}/{name}")}

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        # A plain dict: pulumi 3.272's mock monitor cannot handle a (result, None) tuple.
        answers: dict[str, dict[str, Any]] = {
            "aws:index/getCallerIdentity:getCallerIdentity": {
                "accountId": self.account,
                "arn": f"arn:aws:iam::{self.account}:user/deployer",
                "userId": "AIDEXAMPLE",
                "id": self.account,
            },
            "aws:index/getPartition:getPartition": {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "id": "aws",
            },
            "aws:ecr/getAuthorizationToken:getAuthorizationToken": {
                "userName": "AWS",
                "password": MOCK_REGISTRY_PASSWORD,
                "id": self.region,
            },
        }
        if args.token not in answers:
            raise NotImplementedError(f"the mocks do not answer {args.token}")
        return answers[args.token]


def stack_config(stack_file: Path) -> dict[str, str]:
    """A ``Pulumi.<stack>.yaml`` as the flat ``namespace:key → string`` map Pulumi hands a program."""
    document = yaml.safe_load(stack_file.read_text(encoding="utf-8")) or {}
    config = document.get("config", {}) or {}
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}


def run_program(config: Mapping[str, str], *, project: str = "convclass", stack: str = "dev") -> Recording:
    """Run ``infra/__main__.py`` under mocks with ``config`` and return everything it declared.

    Pulumi's mock settings and config are process-wide: each call replaces them, so run the program once per
    configuration and share the recording.
    """
    region = config.get("aws:region", "eu-west-1")
    mocks = RecordingMocks(region=region)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False)
    pulumi.runtime.set_all_config(dict(config))
    exported: dict[str, Any] = {}

    def program() -> pulumi.Output[Any]:
        outputs: dict[str, Any] = {}
        original = pulumi.export

        def capture(name: str, value: Any) -> None:
            outputs[name] = value

        # The mock engine keeps no stack outputs, so they are captured on their way in.
        pulumi.export = capture
        try:
            runpy.run_path(str(PROGRAM), run_name="__main__")
        finally:
            pulumi.export = original
        return pulumi.Output.from_input(outputs).apply(exported.update)

    pulumi.runtime.test(program)()  # type: ignore[no-untyped-call]
    return Recording(resources=mocks.resources, stack_outputs=exported, project=project, stack=stack)
