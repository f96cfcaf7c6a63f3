"""The local demo driver's reading of training logs."""

from __future__ import annotations

from convclass.training.logs import log_epoch
from convclass_local.demo import EPOCH_LINE


def test_epoch_lines_of_the_training_log_drive_the_progress_bar() -> None:
    class Sink:
        text = ""

        def write(self, value: str) -> None:
            self.text += value

        def flush(self) -> None:
            pass

    sink = Sink()
    log_epoch(3, 8, {"loss": 0.4, "val_accuracy": 0.91}, stream=sink)  # type: ignore[arg-type]
    match = EPOCH_LINE.search(sink.text)
    assert match is not None
    assert (match.group(1), match.group(2)) == ("3", "8")
