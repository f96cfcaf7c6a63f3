"""Subword tokenizers: trained per tenant/classifier, or a base model's tokenizer, always with the PII tokens.

Preprocessing, training and serving all turn text into ids through ``encode_texts``, so the ids a model sees
in production are identical to the ones it was trained on by construction. Tokenizers are stored in Hugging
Face's ``tokenizer.json`` format (plain JSON, loadable with ``transformers.PreTrainedTokenizerFast``), never
pickled.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from convclass.cleaning import PII_TOKENS
from convclass.errors import InvalidInput
from convclass.layout import TOKENIZER_FILE

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
#: Special tokens of every trained tokenizer, ids 0..8 in this order.
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, CLS, SEP, MASK, *PII_TOKENS)
DEFAULT_VOCAB_SIZE = 8000
DEFAULT_MAX_LENGTH = 128
#: How a text longer than ``max_length`` tokens is cut (``encode_texts``); recorded in the model artifact.
Truncation = Literal["head", "head_tail"]
TRUNCATIONS: tuple[str, ...] = ("head", "head_tail")
#: ``_encoder`` key of the copy that neither pads nor truncates (head_tail cuts by itself).
UNLIMITED = 0
# Padding and truncation are settings of a tokenizer object, and the serving app encodes from a thread pool:
# setting them on a shared tokenizer while another thread encodes with another length would race. Each
# (tokenizer, max_length) gets its own configured copy instead, made once and never changed after. An entry
# holds the caller's tokenizer too, so its id cannot be reused by another object while the entry exists.
_ENCODERS: dict[tuple[int, int], tuple[Tokenizer, Tokenizer]] = {}
_ENCODERS_LOCK = threading.Lock()
_MAX_ENCODERS = 32


def train_tokenizer(
    texts: Iterable[str],
    *,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    min_frequency: int = 2,
    lowercase: bool = True,
) -> Tokenizer:
    """Train a BERT-style WordPiece tokenizer on cleaned texts (streamed: ``texts`` may be a generator).

    WordPiece with BERT's normaliser/pre-tokeniser keeps trained and base (MiniLM/BERT) tokenizers
    interchangeable for the models; the PII tokens are special tokens so ``[EMAIL]`` is one id, never split.
    """
    if vocab_size < len(SPECIAL_TOKENS) + 1:
        raise ValueError(f"vocab_size must be at least {len(SPECIAL_TOKENS) + 1}")
    tokenizer = Tokenizer(models.WordPiece(unk_token=UNK, max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        continuing_subword_prefix="##",
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    _set_post_processor(tokenizer)
    return tokenizer


def _set_post_processor(tokenizer: Tokenizer) -> None:
    cls_id, sep_id = tokenizer.token_to_id(CLS), tokenizer.token_to_id(SEP)
    if cls_id is None or sep_id is None:
        raise InvalidInput("tokenizer lacks [CLS]/[SEP] tokens")
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A {SEP}",
        pair=f"{CLS} $A {SEP} $B:1 {SEP}:1",
        special_tokens=[(CLS, cls_id), (SEP, sep_id)],
    )


def load_base_tokenizer(directory: str | Path) -> Tokenizer:
    """Load a base model's ``tokenizer.json`` (e.g. MiniLM) and make the PII tokens special tokens.

    BERT vocabularies reserve ``[unusedN]`` entries; the PII tokens take those ids so the vocabulary size, and
    with it the pretrained embedding matrix, stays unchanged. Without free slots they are appended (vocabulary
    grows).
    """
    path = _tokenizer_path(directory)
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read base tokenizer at {path}: {exc}") from exc
    vocab = spec.get("model", {}).get("vocab")
    added = spec.setdefault("added_tokens", [])
    present = {entry["content"] for entry in added}
    if isinstance(vocab, dict):
        unused = sorted((tid, tok) for tok, tid in vocab.items() if tok.startswith("[unused"))
        for token in PII_TOKENS:
            if token in vocab or not unused:
                continue
            tid, old = unused.pop(0)
            del vocab[old]
            vocab[token] = tid
            added[:] = [e for e in added if e["content"] != old]
            added.append(_added_token(tid, token))
            present.add(token)
    tokenizer = Tokenizer.from_str(json.dumps(spec))
    missing = [t for t in PII_TOKENS if t not in present and tokenizer.token_to_id(t) is None]
    if missing:
        tokenizer.add_special_tokens(missing)
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def _added_token(tid: int, content: str) -> dict[str, object]:
    return {
        "id": tid,
        "content": content,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": False,
        "special": True,
    }


def _tokenizer_path(path: str | Path) -> Path:
    path = Path(path)
    return path / TOKENIZER_FILE if path.is_dir() else path


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a ``tokenizer.json`` file, or the one inside a directory."""
    file = _tokenizer_path(path)
    try:
        return Tokenizer.from_file(str(file))
    except Exception as exc:  # tokenizers raises a bare Exception for malformed files
        raise InvalidInput(f"cannot load tokenizer from {file}: {exc}") from exc


def save_tokenizer(tokenizer: Tokenizer, directory: str | Path) -> Path:
    """Write ``tokenizer.json`` and the configs ``from_pretrained`` expects; return the JSON path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / TOKENIZER_FILE
    tokenizer.save(str(path))
    special = {"pad_token": PAD, "unk_token": UNK, "cls_token": CLS, "sep_token": SEP, "mask_token": MASK}
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **special,
        "additional_special_tokens": list(PII_TOKENS),
        "model_max_length": 512,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (directory / "special_tokens_map.json").write_text(
        json.dumps({**special, "additional_special_tokens": list(PII_TOKENS)}, indent=2), encoding="utf-8"
    )
    return path


def tokenizer_sha256(tokenizer: Tokenizer) -> str:
    """Content hash of the serialised tokenizer (recorded in dataset manifests and model artifacts)."""
    return hashlib.sha256(tokenizer.to_str().encode("utf-8")).hexdigest()


def encode_texts(
    tokenizer: Tokenizer, texts: Sequence[str], max_length: int, truncation: Truncation = "head"
) -> dict[str, np.ndarray]:
    """Encode cleaned texts to ``input_ids``/``attention_mask``: int32, shape ``[len(texts), max_length]``.

    Sequences longer than ``max_length`` are truncated, keeping ``[CLS] … [SEP]``: ``truncation="head"`` keeps
    the first tokens, ``"head_tail"`` the first ``head_tail_split(max_length)`` tokens and the last ones (the
    end of a long email often says what it is about: Sun et al., 2019). Right-padded with ``[PAD]``. A single
    text is encoded without the batch machinery, which keeps per-request serving latency in the tens of
    microseconds. Safe to call from several threads at once, with any mix of lengths: ``tokenizer`` itself is
    never changed (encoding uses a configured copy, so changes made to ``tokenizer`` after its first use are
    not seen).
    """
    if max_length < 2:
        raise ValueError("max_length must be at least 2")
    if isinstance(texts, str):
        raise TypeError("encode_texts expects a sequence of texts, not a single string")
    if truncation not in TRUNCATIONS:
        raise ValueError(f"truncation must be one of {', '.join(TRUNCATIONS)}")
    shape = (len(texts), max_length)
    if truncation == "head_tail":
        return _encode_head_tail(tokenizer, texts, max_length)
    encoder = _encoder(tokenizer, max_length)
    encodings = [encoder.encode(texts[0])] if len(texts) == 1 else encoder.encode_batch(list(texts))
    input_ids = np.array([e.ids for e in encodings], dtype=np.int32).reshape(shape)
    # From the encoding, not from ``ids != pad``: a customer can type "[PAD]" literally.
    attention_mask = np.array([e.attention_mask for e in encodings], dtype=np.int32).reshape(shape)
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def head_tail_split(max_length: int) -> int:
    """Tokens kept from the start (``[CLS]`` included) under ``head_tail``; the rest come from the end."""
    return max_length // 2


def _encode_head_tail(tokenizer: Tokenizer, texts: Sequence[str], max_length: int) -> dict[str, np.ndarray]:
    encoder = _encoder(tokenizer, UNLIMITED)
    encodings = [encoder.encode(texts[0])] if len(texts) == 1 else encoder.encode_batch(list(texts))
    pad_id = tokenizer.token_to_id(PAD)
    if pad_id is None:
        raise InvalidInput("tokenizer has no [PAD] token")
    input_ids = np.full((len(texts), max_length), pad_id, dtype=np.int32)
    attention_mask = np.zeros((len(texts), max_length), dtype=np.int32)
    head = head_tail_split(max_length)
    for row, encoding in enumerate(encodings):
        ids, mask = encoding.ids, encoding.attention_mask
        if len(ids) > max_length:
            tail = max_length - head
            ids, mask = ids[:head] + ids[-tail:], mask[:head] + mask[-tail:]
        input_ids[row, : len(ids)] = ids
        attention_mask[row, : len(mask)] = mask
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def _encoder(tokenizer: Tokenizer, max_length: int) -> Tokenizer:
    """The copy of ``tokenizer`` that pads and truncates to ``max_length`` (made on first use)."""
    key = (id(tokenizer), max_length)
    entry = _ENCODERS.get(key)  # a dict read is atomic: the common path takes no lock
    if entry is not None and entry[0] is tokenizer:
        return entry[1]
    with _ENCODERS_LOCK:
        entry = _ENCODERS.get(key)
        if entry is not None and entry[0] is tokenizer:
            return entry[1]
        encoder = Tokenizer.from_str(tokenizer.to_str())
        _configure(encoder, max_length)
        if len(_ENCODERS) >= _MAX_ENCODERS:
            del _ENCODERS[next(iter(_ENCODERS))]  # the oldest; a later call simply makes it again
        _ENCODERS[key] = (tokenizer, encoder)
        return encoder


def _configure(tokenizer: Tokenizer, max_length: int) -> None:
    if max_length == UNLIMITED:
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return
    # A loaded tokenizer may carry its own settings from its JSON; those for this length are kept.
    truncation = tokenizer.truncation
    if not truncation or truncation.get("max_length") != max_length:
        tokenizer.enable_truncation(max_length=max_length)
    padding = tokenizer.padding
    if not padding or padding.get("length") != max_length:
        pad_id = tokenizer.token_to_id(PAD)
        if pad_id is None:
            raise InvalidInput("tokenizer has no [PAD] token")
        tokenizer.enable_padding(length=max_length, pad_id=pad_id, pad_token=PAD)
