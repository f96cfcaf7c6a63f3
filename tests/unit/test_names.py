"""Every name and key derived from (tenant, classifier[, run]) differs between two distinct pairs."""

from __future__ import annotations

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from convclass import layout

_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
ids = st.lists(_word, min_size=1, max_size=4).map("-".join).filter(lambda value: len(value) <= 24)
pairs = st.tuples(ids, ids)
run_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,39}", fullmatch=True)


def derived(tenant: str, classifier: str, run: str) -> dict[str, object]:
    """Every per-classifier name and key, by kind (names only need to differ within one kind)."""
    where = layout.ClassifierLayout(tenant, classifier)
    return {
        "endpoint": layout.endpoint_name(tenant, classifier),
        "model": layout.model_name(tenant, classifier, run),
        "endpoint_config": layout.endpoint_config_name(tenant, classifier, run),
        "training_job": layout.training_job_base_name(tenant, classifier, run),
        "execution": layout.training_execution_name(tenant, classifier, run),
        "alarms": tuple(layout.endpoint_alarm_names(tenant, classifier)),
        "prefix": where.prefix,
        "consent": where.consent_key,
        "champion": where.champion_key,
        "watermark": where.watermark_key,
        "export": where.export_manifest_key(run),
        "dataset": where.dataset_manifest_key(run),
        "model_output": where.model_output_prefix(run),
        "checkpoints": where.checkpoint_prefix(run),
    }


@given(first=pairs, second=pairs, run=run_ids)
@example(first=("acme", "shop-intent"), second=("acme-shop", "intent"), run="r1")
@example(first=("a", "b-c-d"), second=("a-b", "c-d"), run="a-b-c-d")
def test_distinct_pairs_never_share_a_name_or_key(
    first: tuple[str, str], second: tuple[str, str], run: str
) -> None:
    assume(first != second)
    mine, theirs = derived(*first, run), derived(*second, run)
    for kind, value in mine.items():
        assert value != theirs[kind], kind
    # Alarms of one endpoint never name another endpoint's alarm either.
    assert not set(mine["alarms"]) & set(theirs["alarms"])  # type: ignore[arg-type]


@given(pair=pairs, runs=st.tuples(run_ids, run_ids))
def test_distinct_runs_of_one_classifier_never_share_a_run_name(
    pair: tuple[str, str], runs: tuple[str, str]
) -> None:
    assume(runs[0] != runs[1])
    first, second = derived(*pair, runs[0]), derived(*pair, runs[1])
    for kind in ("model", "endpoint_config", "training_job", "export", "dataset", "model_output"):
        assert first[kind] != second[kind], kind


@given(pair=pairs, run=run_ids)
def test_names_fit_their_resource_limits(pair: tuple[str, str], run: str) -> None:
    names = derived(*pair, run)
    for kind in ("endpoint", "model", "endpoint_config"):
        value = str(names[kind])
        assert len(value) <= layout.SAGEMAKER_NAME_MAX
        assert all(char.isalnum() or char == "-" for char in value)
    assert len(str(names["training_job"])) + layout.TRAINING_ATTEMPT_SUFFIX_MAX <= layout.SAGEMAKER_NAME_MAX
    assert len(str(names["execution"])) <= layout.EXECUTION_NAME_MAX
    assert layout.execution_pair(str(names["execution"])) == pair


@pytest.mark.parametrize("bad", ["acme--shop", "-acme", "acme-", "Acme", "a" * 25, "", "acme_shop"])
def test_ids_that_could_make_names_ambiguous_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="tenant id"):
        layout.validate_id(bad, "tenant id")


def test_foreign_execution_names_belong_to_no_tenant() -> None:
    assert layout.execution_pair("acme-support-2026") is None
    assert layout.execution_pair("Acme--support--k") is None
    assert layout.execution_pair("acme--support--k") == ("acme", "support")
