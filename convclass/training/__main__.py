"""``python -m convclass.training train [--root DIR]``: the training image's entrypoint.

Any error ends the job with a one-line cause in ``<root>/output/failure`` (SageMaker's FailureReason) and a
non-zero exit status. Causes name the error class and never contain email text.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path

from convclass.errors import ConvclassError
from convclass.training.config import load_hyperparameters
from convclass.training.trainer import DEFAULT_ROOT, JobPaths, run_training

#: SageMaker truncates FailureReason at 1024 characters.
FAILURE_LIMIT = 1024
EXIT_FAILED = 1
EXIT_INTERRUPTED = 143


def _write_failure(paths: JobPaths, cause: str) -> None:
    paths.failure.parent.mkdir(parents=True, exist_ok=True)
    paths.failure.write_text(" ".join(cause.split())[:FAILURE_LIMIT] + "\n", encoding="utf-8")


def train(root: Path) -> int:
    paths = JobPaths(root)
    try:
        config = load_hyperparameters(paths.hyperparameters)
        logging.getLogger("convclass.training").info("hyperparameters: %s", config.model_dump_json())
        run_training(paths, config)
    except ConvclassError as exc:
        _write_failure(paths, f"{type(exc).__name__}: {exc}")
        print(f"training failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED if type(exc).__name__ == "TrainingInterrupted" else EXIT_FAILED
    except Exception as exc:
        # Unexpected: keep the traceback in the log, but the failure reason only names the error type and the
        # innermost frame, because exception messages from libraries can quote input data.
        traceback.print_exc()
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
        _write_failure(paths, f"AlgorithmError: {type(exc).__name__}{where}")
        return EXIT_FAILED
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convclass.training")
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser("train", help="run one training job (SageMaker container contract)")
    train_parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="SageMaker's /opt/ml (default)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return train(args.root)


if __name__ == "__main__":
    sys.exit(main())
