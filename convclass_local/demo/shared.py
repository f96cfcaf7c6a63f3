"""Act four: the long tail. Two more sample tenants, small as most tenants are, train with
``hosting="shared"``: the pipeline publishes each approved model under its own immutable key in the shared
model prefix, warms it on the one shared multi-model endpoint (the real serving app in multi-model mode) and
records the route (endpoint + ``TargetModel``) as the classifier's champion. New emails of both tenants then
go through the same inbound queue; the inference workflow reads each classifier's route and passes
``TargetModel``, so each tenant gets its own model's labels and never the other's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from convclass.events import execution_name
from convclass_local.demo.inbound import classify, top_label
from convclass_local.demo.options import SharedResult, SharedTenantResult
from convclass_local.demo.session import DemoSession
from convclass_local.demo.training import champion_record, drop_snapshot, sample_request, source_prefix

#: The intents an urgency classifier calls urgent (the rest are routine).
URGENT_INTENTS = frozenset({"account_access", "billing_issue", "technical_problem"})


@dataclass(frozen=True)
class SharedTenant:
    """A sample tenant of act four: its classifier (also the label field of its records) and how its labels
    derive from the generated emails' intents."""

    tenant: str
    classifier: str
    label_of: Callable[[str], str]


def _urgency(intent: str) -> str:
    return "urgent" if intent in URGENT_INTENTS else "routine"


#: Two tenants whose label sets do not overlap, so an answer from the other tenant's model would show.
SHARED_TENANTS = (
    SharedTenant("globex", "intent", lambda intent: intent),
    SharedTenant("initech", "urgency", _urgency),
)


def _records(session: DemoSession, tenant: SharedTenant, n: int, seed: int) -> list[dict[str, Any]]:
    """Generated emails of the usual mix, labelled for ``tenant``'s classifier."""
    from convclass_local.generator import DEFAULT_LABEL_FIELD, generate_emails

    records = generate_emails(n, seed=seed, tenant_id=tenant.tenant, difficulty=session.options.difficulty)
    for record in records:
        record["labels"] = {tenant.classifier: tenant.label_of(record["labels"][DEFAULT_LABEL_FIELD])}
    return records


def share_one_endpoint(session: DemoSession, observer: str) -> None:
    """Run act four; its figures go into ``session.result.shared``."""
    runtime, options = session.runtime, session.options
    endpoint = runtime.outputs.require("shared_endpoint_name")
    found = session.result.shared = SharedResult(endpoint=endpoint)
    session.say(
        f"[bold]act four[/]: {len(SHARED_TENANTS)} small tenants train with hosting [bold]shared[/]: "
        f"one multi-model endpoint, [bold]{endpoint}[/], serves both"
    )
    business_key = "demo-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    arns: dict[str, str] = {}
    for index, tenant in enumerate(SHARED_TENANTS):
        records = _records(session, tenant, options.shared_emails, seed=100 * session.result.run + index)
        uri = drop_snapshot(runtime, records, source_prefix(tenant.tenant))
        labels = sorted({record["labels"][tenant.classifier] for record in records})
        request = sample_request(
            uri,
            options.hyperparameters,
            business_key=business_key,
            tenant=tenant.tenant,
            classifier=tenant.classifier,
            label_field=tenant.classifier,
            hosting="shared",
        )
        arns[tenant.tenant] = session.operator.start_training(request)
        found.tenants[tenant.tenant] = SharedTenantResult(classifier=tenant.classifier, labels=labels)
        session.say(
            f"tenant [bold]{tenant.tenant}[/] ({len(records)} emails; {tenant.classifier}: "
            f"{', '.join(labels)}) → execution [bold]{execution_name(request)}[/]"
        )
    with session.progress:
        for tenant in SHARED_TENANTS:
            result = found.tenants[tenant.tenant]
            result.status, _ = session.follow(arns[tenant.tenant])
            record = champion_record(session, tenant.tenant, tenant.classifier)
            if record is not None and record.hosting == "shared" and record.endpoint_name == endpoint:
                result.target_model = record.target_model
                result.test_accuracy = record.metrics.accuracy
                session.say(
                    f"route of {tenant.tenant}/{tenant.classifier}: {endpoint} → TargetModel "
                    f"[bold]{record.target_model}[/] (test accuracy {record.metrics.accuracy:.3f})"
                )
    if any(found.tenants[tenant.tenant].target_model is None for tenant in SHARED_TENANTS):
        session.say("[red]a tenant has no route on the shared endpoint: nothing to classify for it[/]")
        return
    _classify_both(session, observer, found)


def _classify_both(session: DemoSession, observer: str, found: SharedResult) -> None:
    """New emails of both tenants through the inbound queue, each answered by its own tenant's model."""
    table = Table("tenant", "conversation", "expected", "predicted", "probability", title="shared endpoint")
    for index, tenant in enumerate(SHARED_TENANTS):
        result = found.tenants[tenant.tenant]
        seed = 5000 + 100 * session.result.run + index
        emails = _records(session, tenant, session.options.inbound, seed=seed)
        answers = classify(session, observer, emails, tenant=tenant.tenant, classifier=tenant.classifier)
        for email in emails:
            conversation, expected = email["conversation_id"], email["labels"][tenant.classifier]
            top = top_label(answers.get(conversation))
            if top is None:
                result.failed += 1
                table.add_row(tenant.tenant, conversation, expected, "[red]no answer[/]", "")
                continue
            predicted, probability = top
            result.classified += 1
            if predicted not in result.labels:
                found.leaks += 1
            mark = "green" if predicted == expected else ("yellow" if predicted in result.labels else "red")
            answer = f"[{mark}]{predicted}[/]"
            table.add_row(tenant.tenant, conversation, expected, answer, f"{probability:.3f}")
    session.console.print(table)
    session.say(
        f"{sum(r.classified for r in found.tenants.values())} emails of {len(found.tenants)} tenants "
        f"classified on {found.endpoint}; answers with another tenant's label: {found.leaks}"
    )
