"""Keep a local deployment's data between runs, as the AWS account would: the bucket and the live endpoints.

The embedded AWS lives in memory, so on exit the tenants' objects (exports, datasets, models, champions)
and each endpoint's model → config → endpoint chain are written under ``<workdir>/state``, and restored on
the next start. That is what lets a second ``convclass-local demo`` compare its challenger with the champion
the first run deployed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from convclass.deployment import sse_kms
from convclass.layout import TENANTS_ROOT

_OBJECTS = "objects"
_ENDPOINTS = "endpoints.json"


def save(root: Path, clients: dict[str, Any], bucket: str) -> int:
    """Write every tenant object and endpoint chain under ``root`` (replacing what was there); return
    #objects."""
    s3, sagemaker = clients["s3"], clients["sagemaker"]
    staging = root.with_name(root.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    objects = staging / _OBJECTS
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=TENANTS_ROOT):
        for item in page.get("Contents", []):
            target = (objects / item["Key"]).resolve()
            if not target.is_relative_to(objects.resolve()):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(target))
            count += 1
    endpoints = []
    for page in sagemaker.get_paginator("list_endpoints").paginate():
        for item in page.get("Endpoints", []):
            endpoint = sagemaker.describe_endpoint(EndpointName=item["EndpointName"])
            config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
            models = [
                sagemaker.describe_model(ModelName=variant["ModelName"])
                for variant in config["ProductionVariants"]
            ]
            endpoints.append(
                {
                    "endpoint": {"EndpointName": endpoint["EndpointName"], "Tags": []},
                    "config": {
                        "EndpointConfigName": config["EndpointConfigName"],
                        "ProductionVariants": config["ProductionVariants"],
                        **({"KmsKeyId": config["KmsKeyId"]} if config.get("KmsKeyId") else {}),
                    },
                    "models": [
                        {
                            "ModelName": model["ModelName"],
                            "PrimaryContainer": model["PrimaryContainer"],
                            "ExecutionRoleArn": model["ExecutionRoleArn"],
                        }
                        for model in models
                    ],
                }
            )
    staging.mkdir(parents=True, exist_ok=True)
    (staging / _ENDPOINTS).write_text(json.dumps(endpoints, indent=2, default=str))
    shutil.rmtree(root, ignore_errors=True)
    staging.rename(root)
    return count


def restore(root: Path, clients: dict[str, Any], bucket: str, kms_key_arn: str) -> int:
    """Upload the saved objects and recreate the saved endpoints; return how many objects came back."""
    s3, sagemaker = clients["s3"], clients["sagemaker"]
    objects = root / _OBJECTS
    count = 0
    if objects.is_dir():
        for path in sorted(p for p in objects.rglob("*") if p.is_file()):
            s3.upload_file(
                str(path), bucket, path.relative_to(objects).as_posix(), ExtraArgs=sse_kms(kms_key_arn)
            )
            count += 1
    manifest = root / _ENDPOINTS
    if manifest.is_file():
        for chain in json.loads(manifest.read_text()):
            for model in chain["models"]:
                sagemaker.create_model(**model)
            sagemaker.create_endpoint_config(**chain["config"])
            sagemaker.create_endpoint(
                EndpointName=chain["endpoint"]["EndpointName"],
                EndpointConfigName=chain["config"]["EndpointConfigName"],
            )
    return count
