"""Keys of models on the shared endpoint: one immutable key per run, tenants and classifiers never collide."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convclass.hosting.keys import (
    SHARED_MODELS_PREFIX,
    shared_classifier_prefix,
    shared_model_key,
    target_model,
)

IDS = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
RUNS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,8}", fullmatch=True)


def test_key_names_tenant_classifier_and_run_under_the_shared_prefix() -> None:
    key = shared_model_key("acme", "triage", "run-7")
    assert key == "shared-models/acme/triage/run-7/model.tar.gz"
    assert key == SHARED_MODELS_PREFIX + target_model("acme", "triage", "run-7")
    assert key.startswith(shared_classifier_prefix("acme", "triage"))


def test_hyphens_cannot_make_two_pairs_share_a_key() -> None:
    pairs = [("a-b", "c"), ("a", "b-c"), ("a-b-c", "d"), ("a", "b")]
    keys = {shared_model_key(tenant, classifier, "r1") for tenant, classifier in pairs}
    assert len(keys) == len(pairs)


@settings(derandomize=True, max_examples=200)
@given(IDS, IDS, RUNS, IDS, IDS, RUNS)
def test_distinct_triples_never_share_a_key(t1: str, c1: str, r1: str, t2: str, c2: str, r2: str) -> None:
    if (t1, c1, r1) != (t2, c2, r2):
        assert shared_model_key(t1, c1, r1) != shared_model_key(t2, c2, r2)


def test_another_tenants_prefix_never_contains_a_key() -> None:
    tenants = ["acme", "acme-eu", "acm"]
    for mine, other in itertools.permutations(tenants, 2):
        assert not shared_model_key(mine, "triage", "r1").startswith(
            shared_classifier_prefix(other, "triage")
        )


@pytest.mark.parametrize(
    ("tenant", "classifier", "run"),
    [("../x", "c", "r"), ("a", "b/c", "r"), ("A", "c", "r"), ("a", "c", "../r"), ("a", "c", "")],
)
def test_ids_that_could_escape_their_segment_are_refused(tenant: str, classifier: str, run: str) -> None:
    with pytest.raises(ValueError):
        shared_model_key(tenant, classifier, run)
