"""Dataset builder: accounting, de-duplication without leaks, stratified seeded splits, named errors."""

from __future__ import annotations

import json
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from convclass.cleaning import CLEANING_VERSION
from convclass.dataset import (
    MANIFEST_FILE,
    SPLIT_FILES,
    SPLIT_SCHEMA,
    BuildOptions,
    DatasetManifest,
    build_dataset,
)
from convclass.errors import InsufficientData, InvalidInput
from convclass.layout import Split
from convclass.tokenization import encode_texts, load_tokenizer
from convclass_local.generator import generate_emails, write_jsonl, write_parquet

TENANT = "acme-shop"


def _options(**overrides: Any) -> BuildOptions:
    settings: dict[str, Any] = {"label_field": "intent", "tenant": TENANT, "vocab_size": 800, **overrides}
    return BuildOptions(**settings)


def _read_splits(out: Path) -> dict[Split, pa.Table]:
    return {split: pq.read_table(out / name) for split, name in SPLIT_FILES.items()}


def _bad_lines() -> bytes:
    good = {
        "conversation_id": "x-1",
        "tenant_id": TENANT,
        "created_at": "2026-01-01T00:00:00Z",
        "subject": "Hi",
        "body": "<p>My card was declined</p>",
        "labels": {"intent": "billing_issue"},
    }
    variants: list[object] = [
        "not json at all",
        ["a", "json", "list"],
        {k: v for k, v in good.items() if k != "body"},  # missing field
        {**good, "conversation_id": "x-2", "tenant_id": "someone-else"},
        {**good, "conversation_id": "x-3", "labels": {"other": "x"}},  # no label for this classifier
        {**good, "conversation_id": "x-4", "labels": {"intent": "   "}},
        {**good, "conversation_id": "x-5", "subject": None, "body": "<script>only()</script>"},
        {**good, "conversation_id": "x-6", "created_at": "yesterday"},
    ]
    lines = [v if isinstance(v, str) else json.dumps(v) for v in variants]
    # Valid apart from its body bytes, which are not UTF-8: kept, and counted as broken encoding.
    latin1 = (
        b'{"conversation_id": "x-7", "tenant_id": "acme-shop", "created_at": "2026-01-01T00:00:00Z", '
        b'"body": "Caf\xe9 terminal declined my card", "labels": {"intent": "billing_issue"}}\n'
    )
    return ("\n".join(lines) + "\n\n").encode() + latin1


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DatasetManifest, list[dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("dataset")
    records = generate_emails(1800, seed=4, duplicate_rate=0.03)
    # A rare label that must be dropped and reported.
    for record in records[:4]:
        record["labels"] = {"intent": "gift_cards"}
    write_parquet(records[:1200], folder / "part-0.parquet", row_group_size=500)
    write_jsonl(records[1200:], folder / "part-1.jsonl")
    with (folder / "part-1.jsonl").open("ab") as handle:
        handle.write(_bad_lines())
    manifest = build_dataset(
        [folder / "part-0.parquet", folder / "part-1.jsonl"], folder / "out", _options(chunk_size=300)
    )
    return folder / "out", manifest, records


def test_every_input_record_is_accounted_for(
    built: tuple[Path, DatasetManifest, list[dict[str, Any]]],
) -> None:
    _, manifest, records = built
    counts = manifest.counts
    assert counts.read == len(records) + 9
    assert counts.invalid == 4  # not JSON, a list, missing body, bad timestamp
    assert counts.wrong_tenant == 1
    assert counts.missing_label == 2
    assert counts.empty_text == 1
    assert counts.duplicates > 0
    assert counts.accounted
    assert sum(f.records for f in manifest.inputs) == counts.read
    assert manifest.status == "ok"
    assert manifest.cleaning_version == CLEANING_VERSION


def test_rare_labels_are_dropped_and_reported(
    built: tuple[Path, DatasetManifest, list[dict[str, Any]]],
) -> None:
    _, manifest, _ = built
    assert manifest.dropped_labels == {"gift_cards": 4}
    assert manifest.counts.rare_label == 4
    assert "gift_cards" not in manifest.labels


def test_splits_are_stratified_and_about_80_10_10(
    built: tuple[Path, DatasetManifest, list[dict[str, Any]]],
) -> None:
    out, manifest, _ = built
    splits = _read_splits(out)
    total = sum(t.num_rows for t in splits.values())
    assert total == manifest.counts.kept
    assert splits["train"].num_rows / total == pytest.approx(0.8, abs=0.02)
    for split, table in splits.items():
        per_label = Counter(table.column("label").to_pylist())
        assert per_label == Counter(manifest.split_counts[split])
        assert set(per_label) == set(manifest.labels)  # every label in every split
        for label, n in per_label.items():
            share = n / sum(per_split[label] for per_split in manifest.split_counts.values())
            assert share == pytest.approx({"train": 0.8, "validation": 0.1, "test": 0.1}[split], abs=0.06)


def test_no_text_lands_in_two_splits(built: tuple[Path, DatasetManifest, list[dict[str, Any]]]) -> None:
    out, _, _ = built
    splits = _read_splits(out)
    seen: dict[str, str] = {}
    for split, table in splits.items():
        ids = table.column("conversation_id").to_pylist()
        assert len(ids) == len(set(ids))
        for text in table.column("text").to_pylist():
            key = " ".join(text.casefold().split())
            assert seen.setdefault(key, split) == split, "duplicate text leaked across splits"


def test_split_files_have_the_contract_columns_and_ids_match_the_tokenizer(
    built: tuple[Path, DatasetManifest, list[dict[str, Any]]],
) -> None:
    out, manifest, _ = built
    assert manifest.tokenizer is not None
    tokenizer = load_tokenizer(out / manifest.tokenizer.file)
    test = pq.read_table(out / SPLIT_FILES["test"])
    assert test.schema.equals(SPLIT_SCHEMA)
    rows = test.slice(0, 20).to_pylist()
    encoded = encode_texts(tokenizer, [r["text"] for r in rows], manifest.tokenizer.max_length)
    assert [r["input_ids"] for r in rows] == encoded["input_ids"].tolist()
    assert [r["attention_mask"] for r in rows] == encoded["attention_mask"].tolist()
    assert all(manifest.labels[r["label_id"]] == r["label"] for r in rows)
    reloaded = DatasetManifest.model_validate_json((out / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert reloaded == manifest
    assert manifest.cleaning.malformed_markup > 0
    assert manifest.cleaning.broken_encoding >= 1
    assert manifest.cleaning.pii_masked.get("[NUMBER]", 0) > 0


def test_same_seed_same_splits_other_seed_other_splits(tmp_path: Path) -> None:
    records = generate_emails(400, seed=9)
    write_jsonl(records, tmp_path / "in.jsonl")

    def test_ids(seed: int, name: str) -> list[str]:
        build_dataset([tmp_path / "in.jsonl"], tmp_path / name, _options(seed=seed, min_examples_per_label=3))
        ids: list[str] = pq.read_table(tmp_path / name / "test.parquet").column("conversation_id").to_pylist()
        return ids

    assert test_ids(1, "a") == test_ids(1, "b")
    assert test_ids(1, "a") != test_ids(2, "c")


def test_one_label_raises_insufficient_data_and_writes_a_manifest(tmp_path: Path) -> None:
    records = generate_emails(200, seed=1)
    for record in records:
        record["labels"] = {"intent": "billing_issue"}
    write_jsonl(records, tmp_path / "in.jsonl")
    with pytest.raises(InsufficientData, match="1 label"):
        build_dataset([tmp_path / "in.jsonl"], tmp_path / "out", _options())
    manifest = DatasetManifest.model_validate_json((tmp_path / "out" / MANIFEST_FILE).read_text("utf-8"))
    assert manifest.status == "insufficient_data"
    assert manifest.counts.accounted
    assert manifest.counts.not_used > 0
    assert not (tmp_path / "out" / "train.parquet").exists()


def test_too_few_examples_raise_insufficient_data(tmp_path: Path) -> None:
    write_jsonl(generate_emails(30, seed=1), tmp_path / "in.jsonl")
    with pytest.raises(InsufficientData):
        build_dataset([tmp_path / "in.jsonl"], tmp_path / "out", _options())  # 10 per label needed
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(InsufficientData, match="0 label"):
        build_dataset([tmp_path / "empty.jsonl"], tmp_path / "out2", _options())


def test_an_unreadable_parquet_file_is_a_named_error(tmp_path: Path) -> None:
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(InvalidInput, match=r"broken\.parquet"):
        build_dataset([tmp_path / "broken.parquet"], tmp_path / "out", _options())


def test_bad_options_are_rejected() -> None:
    with pytest.raises(InvalidInput):
        _options(ratios=(0.5, 0.5, 0.5))
    with pytest.raises(InvalidInput):
        _options(chunk_size=0)


def test_base_tokenizer_option_uses_that_tokenizer(tmp_path: Path) -> None:
    write_jsonl(generate_emails(200, seed=2), tmp_path / "in.jsonl")
    first = build_dataset([tmp_path / "in.jsonl"], tmp_path / "a", _options(min_examples_per_label=3))
    assert first.tokenizer is not None
    base = build_dataset(
        [tmp_path / "in.jsonl"],
        tmp_path / "b",
        _options(min_examples_per_label=3, base_tokenizer_dir=tmp_path / "a"),
    )
    assert base.tokenizer is not None
    assert base.tokenizer.kind == "base"
    assert base.tokenizer.sha256 == first.tokenizer.sha256


def test_peak_memory_does_not_grow_with_the_number_of_emails(tmp_path: Path) -> None:
    """Python-heap peak while building from 4x more emails stays within a small margin (chunks bound it)."""

    def peak(n: int) -> int:
        path = tmp_path / f"in-{n}.parquet"
        write_parquet(generate_emails(n, seed=n), path)
        tracemalloc.start()
        build_dataset([path], tmp_path / f"out-{n}", _options(chunk_size=200, vocab_size=400))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(600), peak(2400)
    # Per-email state is a 12-byte key (hash + label code): 1,800 more emails cost ~22 KB of it. Holding their
    # cleaned texts would cost ~0.8 MB, holding the records ~5 MB.
    assert large - small < 400_000, (small, large)
