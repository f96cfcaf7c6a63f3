"""The cleaning fixture corpus (tests/fixtures/cleaning): customer words kept, boilerplate out, PII masked.

``make bench-cleaning`` prints the same figures with throughput; this test holds them to their floors (it
times nothing).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fixtures" / "cleaning"))
from cleaning_corpus import CorpusEmail, failures, load_corpus, score

from convclass.cleaning import clean_email

FLOOR_CORE_RECALL = 0.98
CEILING_LEAK_RATE = 0.05
FLOOR_PII_MASKED = 0.99


@pytest.fixture(scope="module")
def corpus() -> list[CorpusEmail]:
    return load_corpus()


def _clean(email: CorpusEmail) -> str:
    return clean_email(email.subject, email.body, email.content_type).text


def test_corpus_covers_every_kind_of_boilerplate(corpus: list[CorpusEmail]) -> None:
    assert len(corpus) >= 300
    assert len({email.id for email in corpus}) == len(corpus)
    kinds = Counter(kind for email in corpus for kind in email.kinds)
    for kind in ("signature", "device", "disclaimer", "hidden", "quote"):
        assert kinds[kind] >= 25, kinds
    assert sum(email.id.startswith("hand-") for email in corpus) >= 25
    assert all(email.keep for email in corpus)
    assert sum(bool(email.drop) for email in corpus) > 0.9 * len(corpus)
    assert sum(len(email.pii) for email in corpus) >= 300
    # The message's words never double as boilerplate words, or the two measures would contradict each other.
    assert all(not set(email.keep) & set(email.drop) for email in corpus)


def test_cleaning_meets_its_floors_on_the_corpus(corpus: list[CorpusEmail]) -> None:
    figures = score(corpus, [_clean(email) for email in corpus])
    report = "\n".join(failures(corpus, _clean)[:25])
    assert figures["core_recall"] >= FLOOR_CORE_RECALL, report
    assert figures["leak_rate"] <= CEILING_LEAK_RATE, report
    assert figures["pii_masked"] >= FLOOR_PII_MASKED, report


def test_the_score_sees_leaks_losses_and_partly_masked_values() -> None:
    """The measure itself: raw bodies leak and keep PII, an empty text loses every word."""
    email = load_corpus()[0]
    assert email.drop
    assert email.pii
    raw = score([email], [email.body])
    assert raw["leak_rate"] == 1.0
    assert raw["pii_masked"] < 1.0
    assert score([email], [""])["core_recall"] == 0.0
    assert score([email], [_clean(email)]) == {
        "emails": 1,
        "core_recall": 1.0,
        "leak_rate": 0.0,
        "pii_masked": 1.0,
        "pii_values": len(email.pii),
    }
