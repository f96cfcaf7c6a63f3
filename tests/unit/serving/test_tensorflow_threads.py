"""TensorFlow's thread pools as the serving CLI sizes them (``set_tensorflow_threads``): a fake ``tf``, so
no test depends on whether this process has started TensorFlow's runtime already."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

import convclass.serving.__main__ as serving_cli
from convclass.serving.backends import INTER_OP_THREADS_ENV, INTRA_OP_THREADS_ENV, set_tensorflow_threads


class FakeThreading:
    """``tf.config.threading``: 0 means TensorFlow's default; ``started`` makes every change fail."""

    def __init__(self, *, started: bool = False, intra: int = 0, inter: int = 0):
        self.started = started
        self.pools = {"intra": intra, "inter": inter}
        self.calls: list[tuple[str, int]] = []

    def _set(self, pool: str, value: int) -> None:
        self.calls.append((pool, value))
        if self.started:
            raise RuntimeError("cannot be modified after initialization")
        self.pools[pool] = value

    def get_intra_op_parallelism_threads(self) -> int:
        return self.pools["intra"]

    def get_inter_op_parallelism_threads(self) -> int:
        return self.pools["inter"]

    def set_intra_op_parallelism_threads(self, value: int) -> None:
        self._set("intra", value)

    def set_inter_op_parallelism_threads(self, value: int) -> None:
        self._set("inter", value)


def fake_tf(threading: FakeThreading) -> SimpleNamespace:
    return SimpleNamespace(config=SimpleNamespace(threading=threading))


def test_only_the_pools_asked_for_are_sized() -> None:
    threading = FakeThreading()
    set_tensorflow_threads(1, tf=fake_tf(threading))
    assert threading.pools == {"intra": 1, "inter": 0}
    set_tensorflow_threads(inter_op=2, tf=fake_tf(threading))
    assert threading.pools == {"intra": 1, "inter": 2}


def test_nothing_asked_for_leaves_tensorflow_alone() -> None:
    threading = FakeThreading(started=True)
    set_tensorflow_threads(None, None, tf=fake_tf(threading))
    assert threading.calls == []


def test_a_running_runtime_already_of_that_size_is_fine() -> None:
    threading = FakeThreading(started=True, intra=1, inter=2)
    set_tensorflow_threads(1, 2, tf=fake_tf(threading))
    assert threading.calls == []


def test_resizing_a_running_runtime_is_a_named_error() -> None:
    threading = FakeThreading(started=True, intra=2)
    with pytest.raises(ValueError, match="before loading a model"):
        set_tensorflow_threads(1, tf=fake_tf(threading))


@pytest.mark.parametrize("bad", [0, -1])
def test_fewer_than_one_thread_is_refused_before_tensorflow_is_touched(bad: int) -> None:
    threading = FakeThreading()
    with pytest.raises(ValueError, match="at least 1"):
        set_tensorflow_threads(intra_op=bad, tf=fake_tf(threading))
    with pytest.raises(ValueError, match="at least 1"):
        set_tensorflow_threads(inter_op=bad, tf=fake_tf(threading))
    assert threading.calls == []


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int | None, int | None]]:
    """What ``serve`` asks ``set_tensorflow_threads`` for (the call is recorded, TensorFlow left alone)."""
    calls: list[tuple[int | None, int | None]] = []
    monkeypatch.setattr(
        serving_cli, "set_tensorflow_threads", lambda intra, inter: calls.append((intra, inter))
    )
    monkeypatch.delenv(INTRA_OP_THREADS_ENV, raising=False)
    monkeypatch.delenv(INTER_OP_THREADS_ENV, raising=False)
    return calls


def serve(tmp_path: Path, *extra: str) -> int:
    # No artifact in tmp_path: serve stops with exit code 2 right after sizing the pools, before binding.
    return serving_cli.main(["serve", "--model-dir", str(tmp_path), *extra])


def test_serve_sizes_the_pools_before_it_opens_a_model(
    tmp_path: Path, recorded: list[tuple[int | None, int | None]]
) -> None:
    assert serve(tmp_path, "--tf-intra-op-threads", "1", "--tf-inter-op-threads", "2") == 2
    assert recorded == [(1, 2)]


def test_serve_reads_the_pool_sizes_from_the_environment(
    tmp_path: Path, recorded: list[tuple[int | None, int | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(INTRA_OP_THREADS_ENV, "1")
    assert serve(tmp_path) == 2
    monkeypatch.setenv(INTER_OP_THREADS_ENV, "3")
    assert serve(tmp_path, "--tf-intra-op-threads", "2") == 2
    assert recorded == [(1, None), (2, 3)]


def test_serve_defaults_to_tensorflows_own_pools(
    tmp_path: Path, recorded: list[tuple[int | None, int | None]]
) -> None:
    assert serve(tmp_path) == 2
    assert recorded == [(None, None)]


def test_serve_over_tf_serving_leaves_tensorflow_alone(
    tmp_path: Path, recorded: list[tuple[int | None, int | None]]
) -> None:
    assert serve(tmp_path, "--backend", "tfserving", "--tf-intra-op-threads", "1") == 2
    assert recorded == []
