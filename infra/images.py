"""ECR repositories for the three convclass images and the digests everything else deploys."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.common import AwsEnv, Naming, child_opts
from infra.config import ImagesConfig

# The three images convclass ships: one Lambda image (every function, different command), the SageMaker
# training image and the SageMaker serving image.
IMAGE_KINDS = ("lambda", "training", "serving")
KEEP_IMAGES = 50


def lifecycle_policy() -> str:
    """Untagged layers from aborted pushes go after a week; tagged images stay (endpoints pin old digests)."""
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": "expire untagged images after 7 days",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": 7,
                    },
                    "action": {"type": "expire"},
                }
            ]
        },
        sort_keys=True,
    )


def lambda_pull_policy(env: AwsEnv) -> str:
    """Lambda pulls the function image with its service principal; scoped to this account's functions."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "LambdaPullsFunctionImages",
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                    "Condition": {"StringLike": {"aws:sourceArn": env.arn("lambda", "function:*")}},
                }
            ],
        },
        sort_keys=True,
    )


@dataclass(frozen=True)
class ImagesArgs:
    naming: Naming
    env: pulumi.Output[AwsEnv]
    config: ImagesConfig
    key_arn: pulumi.Input[str]


class Images(pulumi.ComponentResource):
    """Immutable, scanned, KMS-encrypted repositories; image URIs always of the form ``repo@sha256:...``."""

    repository_urls: dict[str, pulumi.Output[str]]
    repository_arns: dict[str, pulumi.Output[str]]
    image_uris: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: ImagesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("convclass:infra:Images", name, None, opts)
        tags = args.naming.tags("images")
        self.repository_urls = {}
        self.repository_arns = {}
        self.image_uris = {}
        for kind in IMAGE_KINDS:
            repo = aws.ecr.Repository(
                f"{name}-{kind}",
                name=f"{args.naming.prefix}/{kind}",
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                    scan_on_push=True
                ),
                encryption_configurations=[
                    aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=args.key_arn)
                ],
                force_delete=False,
                tags=tags,
                opts=child_opts(self),
            )
            aws.ecr.LifecyclePolicy(
                f"{name}-{kind}-lifecycle",
                repository=repo.name,
                policy=lifecycle_policy(),
                opts=child_opts(self),
            )
            if kind == "lambda":
                aws.ecr.RepositoryPolicy(
                    f"{name}-{kind}-policy",
                    repository=repo.name,
                    policy=args.env.apply(lambda_pull_policy),
                    opts=child_opts(self),
                )
            self.repository_urls[kind] = repo.repository_url
            self.repository_arns[kind] = repo.arn
            self.image_uris[kind] = self._image_uri(name, kind, repo, args.config)
        self.register_outputs({"repository_urls": self.repository_urls, "image_uris": self.image_uris})

    def _image_uri(
        self, name: str, kind: str, repo: aws.ecr.Repository, config: ImagesConfig
    ) -> pulumi.Output[str]:
        if not config.build:
            digest = getattr(config, f"{kind}_digest")
            return repo.repository_url.apply(lambda url: f"{url}@{digest}")
        # Imported here: the docker-build provider is only needed by stacks that build their images.
        import pulumi_docker_build as docker_build

        token = aws.ecr.get_authorization_token_output(registry_id=repo.registry_id)
        image = docker_build.Image(
            f"{name}-{kind}-image",
            context=docker_build.BuildContextArgs(location=config.context),
            dockerfile=docker_build.DockerfileArgs(location=getattr(config, f"{kind}_dockerfile")),
            platforms=[docker_build.Platform(config.platform)],
            push=True,
            # Tags are immutable, so each build has its own (e.g. the Git commit); deployments use the digest.
            tags=[repo.repository_url.apply(lambda url: f"{url}:{config.build_tag}")],
            registries=[
                docker_build.RegistryArgs(
                    address=repo.repository_url,
                    username=token.user_name,
                    password=pulumi.Output.secret(token.password),
                )
            ],
            opts=child_opts(self),
        )
        return pulumi.Output.all(repo.repository_url, image.digest).apply(lambda v: f"{v[0]}@{v[1]}")
