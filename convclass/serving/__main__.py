"""``python -m convclass.serving serve``: the serving image's command.

The artifact is checked before the server binds its port, so an incompatible model stops the container with a
named error instead of answering 503 forever; the model itself loads in the background while ``/ping`` is 503.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from convclass.errors import ConvclassError
from convclass.serving.app import ServingLimits, create_app
from convclass.serving.classifier import load_classifier, open_artifact


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
    serve.add_argument("--max-batch-emails", type=int, default=ServingLimits.max_batch_emails)
    serve.add_argument("--max-request-bytes", type=int, default=ServingLimits.max_request_bytes)
    serve.add_argument("--max-email-bytes", type=int, default=ServingLimits.max_email_bytes)
    serve.add_argument("--top-k", type=int, default=ServingLimits.top_k, help="labels per prediction")
    serve.add_argument("--model-batch-size", type=int, default=64, help="most emails per model call")
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
        artifact = open_artifact(args.model_dir)
    except (ConvclassError, ValueError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 2

    app = create_app(
        loader=lambda: load_classifier(
            artifact,
            backend=args.backend,
            tfserving_url=args.tfserving_url,
            tfserving_model=args.tfserving_model,
            tfserving_wait_s=args.tfserving_wait_s,
            model_batch_size=args.model_batch_size,
        ),
        limits=limits,
    )
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
