"""``clean_email``: the one cleaning function that preprocessing, training and serving all call."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from convclass.cleaning._decode import decode_body
from convclass.cleaning._html import BREAK, html_to_text
from convclass.cleaning._text import (
    DEVICE,
    DISCLAIMER,
    GREETING,
    HIDDEN,
    QUOTE,
    SIGNATURE,
    html_text_to_lines,
    normalize,
    strip_non_content,
)
from convclass.cleaning.pii import mask_pii

#: Part of every dataset manifest and model artifact. Bump it whenever the output of ``clean_email`` changes
#: for some input, so serving can refuse a model trained on differently cleaned text.
CLEANING_VERSION = "2026.12.1"

#: The kinds of text ``CleanedEmail.removed`` counts, in a stable order.
REMOVED_KINDS: tuple[str, ...] = (QUOTE, SIGNATURE, DEVICE, DISCLAIMER, HIDDEN, GREETING)

#: Longest cleaned text (subject + body) kept; longer text is cut at a word boundary and flagged
#: ``truncated``.
DEFAULT_MAX_CHARS = 4000
#: Raw bodies are cut to this many characters before parsing, which bounds time and memory for giant bodies.
MAX_INPUT_CHARS = 1_000_000
#: What the classifier reads of a subject (the export keeps up to 998 characters of it).
MAX_CLEANED_SUBJECT_CHARS = 300
_SUBJECT_CACHE_SIZE = 1024

_REPLY_PREFIX_RE = re.compile(
    r"^(?:\s*(?:re|fw|fwd|aw|wg|sv|vs|tr|antw)\s*(?:\[\d+\])?\s*:)+\s*", re.IGNORECASE
)
_HTML_HINT_RE = re.compile(r"<(?:[a-zA-Z!/])")


@dataclass(frozen=True, slots=True)
class CleanedEmail:
    """Cleaned text plus what cleaning found, so datasets can report damage instead of hiding it.

    ``text`` is ``subject + "\\n\\n" + body`` when both are non-empty (else whichever is non-empty): the
    subject often names the intent ("Refund request") and the blank line keeps it apart from the body for
    readers; the tokenizer treats it as ordinary whitespace.
    """

    text: str
    malformed_markup: bool = False
    broken_encoding: bool = False
    truncated: bool = False
    markup_issues: int = 0
    encoding_issues: int = 0
    quoted_blocks_removed: int = 0
    quote_stripped: bool = False
    signature_stripped: bool = False
    disclaimer_stripped: bool = False
    pii_counts: dict[str, int] = field(default_factory=dict)
    #: Pieces removed per kind (``REMOVED_KINDS``: quoted history, signatures, device lines, disclaimers,
    #: hidden elements, greetings); only kinds that occurred are present.
    removed: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.text


def clean_email(
    subject: str | None,
    body: str | bytes | None,
    content_type: str = "text/html",
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> CleanedEmail:
    """Clean one email for classification. Never raises on any subject/body content.

    Steps: decode (bytes → str, mojibake repair) → HTML to structured text (``text/html``) → NFKC, invisible
    and control characters removed, whitespace collapsed → quoted replies, signatures, disclaimers, greeting
    and sign-off lines removed → PII masked (``PII_TOKENS``) → subject and body combined → cut to
    ``max_chars``.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    text, encoding_issues = decode_body(body if body is not None else "")
    truncated = len(text) > MAX_INPUT_CHARS
    if truncated:
        text = text[:MAX_INPUT_CHARS]
    quoted_blocks = issues = hidden = signatures = devices = 0
    is_html = "html" in content_type.lower() and _HTML_HINT_RE.search(text) is not None
    if is_html:
        if BREAK in text:
            text = text.replace(BREAK, "")  # our line-break marker must only come from the markup
        markup = text.encode("utf-8", errors="replace")  # lone surrogates become "?"
        text, found, issues = html_to_text(markup)
        quoted_blocks, hidden, signatures, devices = (
            found.quoted,
            found.hidden,
            found.signatures,
            found.devices,
        )
        text = html_text_to_lines(text)
    else:
        text = normalize(text)
    text, removed = strip_non_content(text)
    if quoted_blocks:
        removed[QUOTE] = removed.get(QUOTE, 0) + quoted_blocks
    if hidden:
        removed[HIDDEN] = hidden
    if signatures:
        removed[SIGNATURE] = removed.get(SIGNATURE, 0) + signatures
    if devices:
        removed[DEVICE] = removed.get(DEVICE, 0) + devices
    # Mask a bounded window only: masking never needs to look further than the longest text we keep.
    window = 2 * max_chars + 200
    if len(text) > window:
        cut = text.rfind(" ", 0, window)
        text = text[: cut if cut > 0 else window]
        truncated = True
    text, pii_counts = mask_pii(text)

    subject_text = _clean_subject(subject, pii_counts)
    if subject_text and text:
        text = f"{subject_text}\n\n{text}"
    elif subject_text:
        text = subject_text
    if len(text) > max_chars:
        text = _cut(text, max_chars)
        truncated = True
    return CleanedEmail(
        text=text,
        malformed_markup=issues > 0,
        broken_encoding=encoding_issues > 0,
        truncated=truncated,
        markup_issues=issues,
        encoding_issues=encoding_issues,
        quoted_blocks_removed=quoted_blocks,
        quote_stripped=QUOTE in removed,
        signature_stripped=SIGNATURE in removed or DEVICE in removed,
        disclaimer_stripped=DISCLAIMER in removed,
        pii_counts=pii_counts,
        removed={kind: removed[kind] for kind in REMOVED_KINDS if kind in removed} if removed else {},
    )


def _clean_subject(subject: str | None, pii_counts: dict[str, int]) -> str:
    if not subject:
        return ""
    text, counts = _cleaned_subject(subject[: MAX_CLEANED_SUBJECT_CHARS * 4])
    for token, n in counts:
        pii_counts[token] = pii_counts.get(token, 0) + n
    return text


# Subjects repeat from email to email ("Refund request", a help desk's "Your request"): the cleaned subject
# is cached, in a small cache, so memory stays flat however many emails a process cleans.
@lru_cache(maxsize=_SUBJECT_CACHE_SIZE)
def _cleaned_subject(subject: str) -> tuple[str, tuple[tuple[str, int], ...]]:
    """The subject (already cut to what can be kept) as the classifier reads it, and its masked PII counts."""
    text = normalize(subject.replace("\n", " "))
    if ":" in text:
        text = _REPLY_PREFIX_RE.sub("", text)
    text, counts = mask_pii(text)
    text = _cut(text, MAX_CLEANED_SUBJECT_CHARS) if len(text) > MAX_CLEANED_SUBJECT_CHARS else text
    return text, tuple(counts.items())


def _cut(text: str, limit: int) -> str:
    """Cut at the last whitespace before ``limit``; a hard cut drops a dangling ``[`` fragment of a token."""
    head = text[:limit]
    space = max(head.rfind(" "), head.rfind("\n"))
    if space > limit // 2:
        return head[:space].rstrip()
    bracket = head.rfind("[")
    if bracket != -1 and "]" not in head[bracket:]:
        head = head[:bracket]
    return head.rstrip()
