"""The support-email generator: seeded, valid export records, varied mail, labelled text recoverable."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from convclass.cleaning import clean_email
from convclass.records import EXPORT_RECORD_SCHEMA, ExportRecord
from convclass_local.generator import (
    _NEIGHBOURS,
    _TEMPLATES,
    REALISTIC,
    Difficulty,
    LabelledText,
    _sample_text,
    generate_emails,
    iter_emails,
    load_banking77,
    template_labels,
    write_jsonl,
    write_parquet,
)


@pytest.fixture(scope="module")
def emails() -> list[dict[str, object]]:
    return generate_emails(1500, seed=11)


def test_same_seed_same_records_other_seed_other_records(emails: list[dict[str, object]]) -> None:
    assert generate_emails(50, seed=11) == emails[:50]
    assert generate_emails(50, seed=12) != emails[:50]


def test_every_record_is_a_valid_export_record(emails: list[dict[str, object]]) -> None:
    records = [ExportRecord.model_validate(e) for e in emails]
    assert len({r.conversation_id for r in records}) == len(records)
    assert all(r.tenant_id == "acme-shop" for r in records)
    assert {r.body_content_type for r in records} == {"text/html", "text/plain"}
    times = [r.created_at for r in records]
    assert times == sorted(times)


def test_labels_are_skewed_across_the_built_in_intents(emails: list[dict[str, object]]) -> None:
    counts = Counter(e["labels"]["intent"] for e in emails)  # type: ignore[index]
    assert set(counts) == set(template_labels())
    assert 5 <= len(counts) <= 8
    ordered = counts.most_common()
    assert ordered[0][1] > 3 * ordered[-1][1]


def test_bodies_cover_the_messy_parts_of_real_mail(emails: list[dict[str, object]]) -> None:
    bodies = [str(e["body"]) for e in emails]

    def share(marker: str) -> float:
        return sum(marker in b for b in bodies) / len(bodies)

    markers = ("gmail_quote", "divRplyFwdMsg", 'type="cite"', 'width="1" height="1"', "display:none",
               "<style", "MsoNormal", "<table", "&nbsp;", "Sent from my", "CONFIDENTIALITY",
               "-- ")  # fmt: skip
    for marker in markers:
        assert share(marker) > 0.01, marker
    assert share("\n> ") > 0.01  # plain-text quoting
    assert any(not b.isascii() for b in bodies)
    assert sum(clean_email(None, b).malformed_markup for b in bodies) > 0.05 * len(bodies)
    assert len({str(e["body"]) for e in emails}) > 0.9 * len(emails)  # besides deliberate resends


def test_resends_duplicate_subject_and_body_under_a_new_conversation() -> None:
    records = generate_emails(400, seed=3, duplicate_rate=0.2)
    bodies = Counter((r["subject"], r["body"]) for r in records)
    assert sum(n - 1 for n in bodies.values()) > 40
    assert generate_emails(200, seed=3, duplicate_rate=0.0) is not None
    assert len({(r["subject"], r["body"]) for r in generate_emails(200, seed=3, duplicate_rate=0.0)}) == 200


def test_examples_are_wrapped_verbatim_and_survive_cleaning() -> None:
    examples = [
        LabelledText("Why was my card payment declined?", "declined_card_payment"),
        LabelledText("I'd like to know where my new card is.", "card_arrival"),
    ]
    records = list(iter_emails(examples=examples, seed=5, duplicate_rate=0.0))
    assert len(records) == 2
    for record, example in zip(records, examples, strict=True):
        assert record["labels"] == {"intent": example.label}
        assert example.text in clean_email(None, record["body"], record["body_content_type"]).text
    with pytest.raises(ValueError, match="empty"):
        list(iter_emails(examples=[]))


def test_template_text_survives_cleaning_without_the_mail_around_it(emails: list[dict[str, object]]) -> None:
    noise = ("Kind regards", "Sent from my", "CONFIDENTIALITY", "support@acme.example", "wrote:", "Tel:")
    for email in emails[:300]:
        text = clean_email(None, email["body"], str(email["body_content_type"])).text  # type: ignore[arg-type]
        assert text
        assert not any(n in text for n in noise), text


def test_jsonl_and_parquet_writers_round_trip(tmp_path: Path) -> None:
    records = generate_emails(120, seed=2)
    assert write_jsonl(records, tmp_path / "a.jsonl") == 120
    lines = (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()
    assert [ExportRecord.model_validate(json.loads(line)) for line in lines] == [
        ExportRecord.model_validate(r) for r in records
    ]
    assert write_parquet(iter(records), tmp_path / "a.parquet", row_group_size=50) == 120
    table = pq.read_table(tmp_path / "a.parquet")
    assert table.schema.equals(EXPORT_RECORD_SCHEMA)
    assert pq.ParquetFile(tmp_path / "a.parquet").num_row_groups == 3
    assert [ExportRecord.model_validate(r) for r in table.to_pylist()] == [
        ExportRecord.model_validate(r) for r in records
    ]


def test_missing_banking77_folder_says_where_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="PolyAI-LDN"):
        load_banking77(tmp_path)


def test_no_difficulty_leaves_every_seeds_emails_as_they_were(emails: list[dict[str, object]]) -> None:
    assert generate_emails(200, seed=11, difficulty=Difficulty()) == emails[:200]


def _sentences_of(topic: str) -> list[str]:
    """The fixed opening of each template sentence of ``topic`` (up to its first placeholder)."""
    return [s.split("{")[0] for s in _TEMPLATES[topic][1] if len(s.split("{")[0]) >= 15]


def test_overlap_adds_a_neighbouring_topic_and_noise_moves_the_label_to_a_neighbour() -> None:
    rng = random.Random(3)
    for topic in template_labels():
        neighbours = _NEIGHBOURS[topic]
        text, _, label = _sample_text(rng, topic, Difficulty(overlap=1.0))
        assert label == topic
        assert any(opening in text for n in neighbours for opening in _sentences_of(n))
        _, _, noisy = _sample_text(rng, topic, Difficulty(label_noise=1.0))
        assert noisy in neighbours


def test_a_realistic_tenant_is_skewed_and_about_six_percent_mislabelled() -> None:
    rng = random.Random(8)
    topics = [topic for topic in template_labels() for _ in range(500)]
    labels = [_sample_text(rng, topic, REALISTIC)[2] for topic in topics]
    mislabelled = sum(label != topic for label, topic in zip(labels, topics, strict=True))
    assert 0.04 < mislabelled / len(topics) < 0.08
    records = generate_emails(3000, seed=2, difficulty=REALISTIC)
    sizes = Counter(str(record["labels"]["intent"]) for record in records)  # type: ignore[index]
    assert max(sizes.values()) > 4 * min(sizes.values())
