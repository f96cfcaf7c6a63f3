"""The hosting cost model: dated prices, per-tenant figures per mode, and the recommendation."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from convclass.cli import app
from convclass.hosting.cost import (
    HOURS_PER_MONTH,
    ML_C5_LARGE_USD_PER_HOUR,
    PRICES_CHECKED_ON,
    SERVERLESS_ENDPOINT_QUOTA,
    ClassifierProfile,
    Fleet,
    Workload,
    estimate,
    recommend,
    shared_plan,
)


def test_a_dedicated_endpoint_costs_its_instance_hours_whatever_the_traffic() -> None:
    quiet = estimate(Workload(tenants=1000, emails_per_month=50))
    busy = estimate(Workload(tenants=1000, emails_per_month=50_000))
    expected = ML_C5_LARGE_USD_PER_HOUR * HOURS_PER_MONTH
    assert quiet.dedicated == pytest.approx(expected)
    assert busy.dedicated == pytest.approx(expected)
    assert expected == pytest.approx(74.46)
    assert PRICES_CHECKED_ON.year >= 2026


def test_shared_cost_at_a_thousand_tenants_is_the_fleet_split_over_them() -> None:
    report = estimate(Workload(tenants=1000, emails_per_month=5000))
    plan = report.shared_plan
    assert plan.instances == 2  # the floor: memory and CPU each need one
    assert report.shared == pytest.approx(plan.usd_per_month / 1000)
    assert report.shared < 1.0
    assert report.dedicated / report.shared > 100


def test_the_shared_fleet_grows_with_memory_and_with_traffic() -> None:
    fleet = Fleet()
    base = shared_plan(Workload(tenants=1000), fleet)
    big_models = shared_plan(Workload(tenants=1000, model_mb=90), fleet)  # fine-tuned MiniLMs: ~90 MB each
    busy = shared_plan(Workload(tenants=1000, emails_per_month=2_000_000), fleet)
    assert big_models.by_memory > 50
    assert big_models.instances == big_models.by_memory
    assert busy.by_cpu > base.by_cpu
    assert busy.instances == busy.by_cpu


def test_serverless_is_flagged_over_the_endpoint_quota() -> None:
    assert estimate(Workload(tenants=SERVERLESS_ENDPOINT_QUOTA)).serverless_within_quota
    over = estimate(Workload(tenants=SERVERLESS_ENDPOINT_QUOTA + 1))
    assert not over.serverless_within_quota
    assert any("quota" in note for note in over.notes)


def test_recommendation_per_classifier() -> None:
    many = Workload(tenants=1000)
    assert recommend(ClassifierProfile(5000), many).mode == "shared"
    assert recommend(ClassifierProfile(5000, needs_isolation=True), many).mode == "dedicated"
    assert recommend(ClassifierProfile(200_000_000), many).mode == "dedicated"  # its peak fills an instance
    assert recommend(ClassifierProfile(5000), Workload(tenants=10)).mode == "serverless"


def test_bad_parameters_are_named() -> None:
    with pytest.raises(ValueError, match="instance type"):
        Fleet(instance_type="ml.nope")
    with pytest.raises(ValueError, match="tenants"):
        Workload(tenants=0)


def test_convclass_cost_prints_the_figures() -> None:
    result = CliRunner().invoke(app, ["cost", "--tenants", "1000", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["recommendation"] == "shared"
    assert figures["usd_per_tenant_month"]["dedicated"] == pytest.approx(74.46)
    table = CliRunner().invoke(app, ["cost"], env={"COLUMNS": "200"})
    assert table.exit_code == 0
    assert "shared" in table.output
    refused = CliRunner().invoke(app, ["cost", "--instance-type", "ml.nope"])
    assert refused.exit_code == 2
