"""Monthly hosting cost per tenant for dedicated, shared (multi-model) and serverless endpoints.

The model is deliberately small and explicit: instance hours, the memory the models need, the CPU time
the traffic needs, and the published on-demand prices below. Its inputs that depend on convclass itself
(memory per model, CPU ms per email, encoder memory) come from ``make bench-hosting``; everything else is a
parameter. ``convclass cost`` prints it.

Prices: Amazon SageMaker AI on-demand, us-east-1, as listed on aws.amazon.com/sagemaker/pricing; checked on
``PRICES_CHECKED_ON`` against stored copies of public pages (not the live price list). Re-check them before
relying on a figure: prices change and differ per region.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

PRICES_CHECKED_ON = date(2026, 12, 6)
HOURS_PER_MONTH = 730.0
REGION = "us-east-1"

#: Real-time inference instances: (USD per hour, memory GiB, vCPUs).
ML_C5_LARGE_USD_PER_HOUR = 0.102
ML_C5_XLARGE_USD_PER_HOUR = 0.204
ML_M5_LARGE_USD_PER_HOUR = 0.115
ML_M5_XLARGE_USD_PER_HOUR = 0.230
INSTANCES: dict[str, tuple[float, float, int]] = {
    "ml.c5.large": (ML_C5_LARGE_USD_PER_HOUR, 4.0, 2),
    "ml.c5.xlarge": (ML_C5_XLARGE_USD_PER_HOUR, 8.0, 4),
    "ml.m5.large": (ML_M5_LARGE_USD_PER_HOUR, 8.0, 2),
    "ml.m5.xlarge": (ML_M5_XLARGE_USD_PER_HOUR, 16.0, 4),
}
#: Serverless inference: USD per second of request duration per GB of configured memory, and per GB processed.
SERVERLESS_USD_PER_GB_SECOND = 0.00002
SERVERLESS_USD_PER_GB_PROCESSED = 0.016
#: Default quota of serverless endpoints per account and region (raised on request).
SERVERLESS_ENDPOINT_QUOTA = 50
#: S3 Standard storage, USD per GB-month (model archives on the shared prefix).
S3_STANDARD_USD_PER_GB_MONTH = 0.023

Mode = Literal["dedicated", "shared", "serverless"]


@dataclass(frozen=True)
class Workload:
    """Tenants, classifiers and traffic; model figures as measured (``make bench-hosting``)."""

    tenants: int
    classifiers_per_tenant: int = 1
    emails_per_month: float = 5000.0  # per classifier
    model_mb: float = 0.5  # resident memory one loaded model adds (a head: well under 1 MB)
    cpu_ms_per_email: float = 10.0  # warm CPU time of one email (encoder pass included)
    shared_base_mb: float = 600.0  # server process, TensorFlow and the shared encoder
    request_kb: float = 2.0  # request + response bytes of one email

    def __post_init__(self) -> None:
        if self.tenants < 1 or self.classifiers_per_tenant < 1:
            raise ValueError("tenants and classifiers_per_tenant must be at least 1")
        if min(self.emails_per_month, self.model_mb, self.cpu_ms_per_email, self.shared_base_mb) < 0:
            raise ValueError("traffic and model figures cannot be negative")

    @property
    def classifiers(self) -> int:
        return self.tenants * self.classifiers_per_tenant


@dataclass(frozen=True)
class Fleet:
    """How endpoints are provisioned."""

    instance_type: str = "ml.c5.large"
    #: Instances behind each endpoint at least (2 keeps an endpoint up through an instance failure).
    dedicated_instances: int = 1
    shared_min_instances: int = 2
    #: Share of an instance's CPU and memory the capacity plan may use (headroom for bursts and cold loads).
    target_utilization: float = 0.5
    serverless_memory_gb: float = 2.0

    def __post_init__(self) -> None:
        if self.instance_type not in INSTANCES:
            raise ValueError(f"unknown instance type {self.instance_type} (known: {', '.join(INSTANCES)})")
        if not 0 < self.target_utilization <= 1:
            raise ValueError("target_utilization must be in (0, 1]")

    @property
    def usd_per_instance_month(self) -> float:
        return INSTANCES[self.instance_type][0] * HOURS_PER_MONTH


@dataclass(frozen=True)
class SharedPlan:
    instances: int
    by_memory: int
    by_cpu: int
    usd_per_month: float


@dataclass(frozen=True)
class CostReport:
    """USD per tenant-month for each mode, and the fleet the shared figure assumes."""

    dedicated: float
    shared: float
    serverless: float
    shared_plan: SharedPlan
    serverless_within_quota: bool
    notes: list[str] = field(default_factory=list)


def dedicated_usd_per_tenant_month(workload: Workload, fleet: Fleet) -> float:
    """One endpoint per classifier, billed every hour whatever its traffic (plus more instances if busy)."""
    busy = _cpu_instances(workload.emails_per_month, workload.cpu_ms_per_email, fleet)
    instances = max(fleet.dedicated_instances, busy)
    return workload.classifiers_per_tenant * instances * fleet.usd_per_instance_month


def shared_plan(workload: Workload, fleet: Fleet) -> SharedPlan:
    """Instances a multi-model fleet needs so that every model stays resident and CPU stays under target."""
    _, memory_gib, _ = INSTANCES[fleet.instance_type]
    usable_mb = memory_gib * 1024 * fleet.target_utilization - workload.shared_base_mb
    if usable_mb <= 0:
        raise ValueError(f"{fleet.instance_type} has no memory left for models after the server itself")
    by_memory = math.ceil(workload.classifiers * workload.model_mb / usable_mb)
    by_cpu = _cpu_instances(
        workload.classifiers * workload.emails_per_month, workload.cpu_ms_per_email, fleet
    )
    instances = max(fleet.shared_min_instances, by_memory, by_cpu)
    storage = workload.classifiers * workload.model_mb / 1024 * S3_STANDARD_USD_PER_GB_MONTH
    return SharedPlan(instances, by_memory, by_cpu, instances * fleet.usd_per_instance_month + storage)


def serverless_usd_per_tenant_month(workload: Workload, fleet: Fleet) -> float:
    seconds = workload.emails_per_month * workload.cpu_ms_per_email / 1000
    compute = seconds * fleet.serverless_memory_gb * SERVERLESS_USD_PER_GB_SECOND
    data = workload.emails_per_month * workload.request_kb / 2**20 * SERVERLESS_USD_PER_GB_PROCESSED
    return workload.classifiers_per_tenant * (compute + data)


def _cpu_instances(emails_per_month: float, cpu_ms_per_email: float, fleet: Fleet) -> int:
    _, _, vcpus = INSTANCES[fleet.instance_type]
    busy_cores = emails_per_month * cpu_ms_per_email / 1000 / (HOURS_PER_MONTH * 3600)
    return math.ceil(busy_cores / (vcpus * fleet.target_utilization))


def estimate(workload: Workload, fleet: Fleet | None = None) -> CostReport:
    fleet = fleet or Fleet()
    plan = shared_plan(workload, fleet)
    within_quota = workload.classifiers <= SERVERLESS_ENDPOINT_QUOTA
    notes = []
    if not within_quota:
        notes.append(
            f"serverless needs {workload.classifiers} endpoints; the default quota is "
            f"{SERVERLESS_ENDPOINT_QUOTA} per region"
        )
    return CostReport(
        dedicated=dedicated_usd_per_tenant_month(workload, fleet),
        shared=plan.usd_per_month / workload.tenants,
        serverless=serverless_usd_per_tenant_month(workload, fleet),
        shared_plan=plan,
        serverless_within_quota=within_quota,
        notes=notes,
    )


@dataclass(frozen=True)
class ClassifierProfile:
    """What the recommendation looks at for one classifier."""

    emails_per_month: float
    #: Peak-hour traffic as a multiple of the average hour (spiky tenants have a high ratio).
    peak_to_average: float = 3.0
    needs_isolation: bool = False  # contractual or noisy-neighbour reasons to run alone


@dataclass(frozen=True)
class Recommendation:
    mode: Mode
    reason: str


#: A classifier whose own peak keeps this share of a dedicated instance's CPU busy pays for its endpoint.
DEDICATED_PEAK_SHARE = 0.5


def recommend(profile: ClassifierProfile, workload: Workload, fleet: Fleet | None = None) -> Recommendation:
    """``dedicated`` for isolation or sustained traffic that fills an instance, else ``shared``.

    Serverless is named only where it is cheaper than the shared per-classifier cost and the account's
    serverless quota holds every classifier; it has cold starts of seconds, so shared stays the default.
    """
    fleet = fleet or Fleet()
    if profile.needs_isolation:
        return Recommendation("dedicated", "isolation required: its own endpoint and instances")
    _, _, vcpus = INSTANCES[fleet.instance_type]
    peak_cores = (profile.emails_per_month * profile.peak_to_average * workload.cpu_ms_per_email / 1000) / (
        HOURS_PER_MONTH * 3600
    )
    if peak_cores >= vcpus * DEDICATED_PEAK_SHARE:
        return Recommendation(
            "dedicated",
            f"its peak traffic keeps {peak_cores:.2f} of {vcpus} vCPUs busy: a dedicated endpoint is used, "
            "and its traffic no longer shares the fleet's memory and CPU",
        )
    report = estimate(workload, fleet)
    single = Workload(
        tenants=1,
        emails_per_month=profile.emails_per_month,
        cpu_ms_per_email=workload.cpu_ms_per_email,
        request_kb=workload.request_kb,
    )
    serverless = serverless_usd_per_tenant_month(single, fleet)
    shared_per_classifier = report.shared / workload.classifiers_per_tenant
    if report.serverless_within_quota and serverless < shared_per_classifier:
        return Recommendation(
            "serverless", f"${serverless:.2f}/month serverless against ${shared_per_classifier:.2f} shared"
        )
    return Recommendation(
        "shared",
        f"${shared_per_classifier:.2f}/month on the shared endpoint against "
        f"${report.dedicated / workload.classifiers_per_tenant:.2f} dedicated",
    )
