"""Round trip on public data: Banking77 texts wrapped in generated mail and cleaned again keep their words.

Banking77 (Casanueva et al., 2020, CC BY 4.0) from PolyAI-LDN/task-specific-datasets, read from
``../shared/datasets/banking77`` (or ``CONVCLASS_BANKING77_DIR``); never copied into the repository.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest

from convclass.cleaning import clean_email
from convclass_local.generator import BANKING77_DEFAULT_DIR, iter_emails, load_banking77

FOLDER = Path(os.environ.get("CONVCLASS_BANKING77_DIR", BANKING77_DEFAULT_DIR))
_WORD_RE = re.compile(r"\w+")

pytestmark = pytest.mark.skipif(
    not (FOLDER / "test.csv").is_file(),
    reason=f"Banking77 not found at {FOLDER}: "
    "get banking_data/ from github.com/PolyAI-LDN/task-specific-datasets (CC BY 4.0)",
)


def _words(text: str) -> Counter[str]:
    return Counter(word.lower() for word in _WORD_RE.findall(text))


def test_whole_test_split_comes_back_with_its_words(capsys: pytest.CaptureFixture[str]) -> None:
    """Recall: share of the original's words found again. Precision: share of the cleaned body's words that
    are the original's; web-form bodies keep their field labels and the sender's name (they are content, not
    mail furniture), so precision is also reported without them."""
    examples = load_banking77(FOLDER, "test")
    assert len(examples) == 3080
    recall: list[float] = []
    precision: list[float] = []
    precision_mail: list[float] = []
    for example, record in zip(
        examples, iter_emails(examples=examples, seed=77, duplicate_rate=0.0), strict=True
    ):
        cleaned = clean_email(record["subject"], record["body"], record["body_content_type"]).text
        body = _words(cleaned.split("\n\n", 1)[-1] if record["subject"] else cleaned)
        # Long digit runs are masked on purpose: compare with the original as cleaning masks it.
        original = _words(clean_email(None, example.text, "text/plain").text)
        recall.append(sum((original & _words(cleaned)).values()) / max(1, sum(original.values())))
        precision.append(sum((original & body).values()) / max(1, sum(body.values())))
        if "contact form" not in record["body"]:
            precision_mail.append(precision[-1])
    n = len(examples)
    mean_recall, mean_precision = sum(recall) / n, sum(precision) / n
    mail_precision = sum(precision_mail) / len(precision_mail)
    with capsys.disabled():
        print(
            f"\nBanking77 round trip, {n} test texts: token recall {mean_recall:.4f}, token precision "
            f"{mean_precision:.4f} ({mail_precision:.4f} over the {len(precision_mail)} non-web-form emails)"
        )
    assert mean_recall >= 0.99
    assert mail_precision >= 0.99
    assert mean_precision >= 0.9
