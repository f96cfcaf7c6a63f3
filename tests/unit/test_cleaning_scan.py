"""The compiled passes of cleaning (convclass/cleaning/_scan.pyx) against what each docstring promises.

Each is checked against the plain Python it stands for (a search per word, the tag regexes, set lookups, the
normalisation steps one at a time) on generated input that mixes mail markup with edge cases.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from convclass.cleaning._html import _END_TAG_OF, _HINT_WORDS, _LINE_ENDING_TAGS, _SIMPLE_TAG_KEYS, _TAGS
from convclass.cleaning._scan import LineCollapser, TagTable, WordFinder
from convclass.cleaning._text import _INVISIBLE, BREAK, normalize
from convclass_local.cleaning_build import CleaningBuild, cleaning_build, compiled_sources

_MARKUP = [
    "<div>", "</div>", "<DIV class='gmail_quote'>", "<p>", "</P>", "<br/>", "<span style='display:none'>",
    "</span>", "<a href='x'>", "<div-x>", "<p.x>", "</ div>", "<!-- c -->", "<!DOCTYPE html>", "< a>", "<",
    ">", "<a <b>", "<b\x0b>", "<o:p>", "</o:p>", "<td>", "signature", "quote", "-----", "display: none",
    " hidden", "x", " ", "\n", "é", "&nbsp;",
]  # fmt: skip
markup = st.lists(st.one_of(st.sampled_from(_MARKUP), st.text(max_size=8)), max_size=30).map(
    lambda parts: "".join(parts).encode("utf-8", "surrogatepass")
)
_PLAIN_TAG_SPLIT_RE = re.compile(rb"(</?[a-zA-Z][a-zA-Z0-9:]*+)(?=[\s/>])[^>]*>")
_TAG_NAME_RE = re.compile(rb"</?[a-z][a-z0-9:]*")


def _reference_scan(html: bytes, cut_short: bool) -> tuple[int, int, bool, bytes | None]:
    """What TagTable.scan promises for _TAGS, from the tag regexes, a Counter and set lookups."""
    lowered = html.lower()
    names = _TAG_NAME_RE.findall(lowered)
    tags = Counter(names)
    unbalanced = 0
    for start, end in _END_TAG_OF.items():
        if tags[start]:
            missing = tags[start] - tags[end]
            unbalanced += abs(missing) if not cut_short or missing < 0 else 0
        else:
            unbalanced += tags[end]
    pieces = _PLAIN_TAG_SPLIT_RE.split(html)
    joined = None
    if len(pieces) // 2 == lowered.count(b"<"):
        joined = b"".join(
            (BREAK.encode() if piece.lower() in _LINE_ENDING_TAGS else b"") if i % 2 else piece
            for i, piece in enumerate(pieces)
        )
    return len(names), unbalanced, _SIMPLE_TAG_KEYS.issuperset(names), joined


@given(markup, st.booleans())
@example(b"<a <b>x", False)
@example(b"<div-x>a</div>", False)
@example(b"<DIV>a</p></div><br/>b", True)
def test_tag_scan_is_the_tag_regexes_and_the_sets_it_was_built_from(html: bytes, cut_short: bool) -> None:
    assert _TAGS.scan(html, html.lower(), BREAK.encode(), cut_short) == _reference_scan(html, cut_short)


def test_tag_scan_refuses_markup_that_is_not_its_lower_case() -> None:
    with pytest.raises(ValueError, match="lower"):
        _TAGS.scan(b"<div>a</div>", b"<div>", b"")


@given(markup)
@example(b"quote")
@example(b"q")
def test_word_finder_finds_each_word_where_find_does(data: bytes) -> None:
    lowered = data.lower()
    offsets = WordFinder(_HINT_WORDS).first_offsets(lowered)
    assert offsets == [lowered.find(word) for word in _HINT_WORDS]
    assert WordFinder(_HINT_WORDS).occurs(lowered) == any(offset != -1 for offset in offsets)


@pytest.mark.parametrize("words", [(b"x",), (b"",), ("ab",), tuple(b"w%d" % i for i in range(65))])
def test_word_finder_refuses_words_it_cannot_search(words: tuple[bytes, ...]) -> None:
    with pytest.raises(ValueError):
        WordFinder(words)


def test_tag_table_refuses_names_too_long_to_hold() -> None:
    with pytest.raises(ValueError, match="bytes long"):
        TagTable([b"<" + b"x" * 20], [], {})


_INVISIBLE_RE = re.compile("[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in _INVISIBLE) + "]")
_TEXT = [
    "a", "Z", " ", "\n", "\r", "\t", "\x0b", "\x0c", "\x1c", "\x00", "\x7f", "\x85", "\xa0", "\xad", "\u034f",
    "\u1680", "\u2028", "\u200b", "\u3000", BREAK, "\ue001", "\ufeff", "\ufffd", "\U000e0001", "\U0010ffff",
    "\u0378", "é", "e\u0301", "ﬁ", "日", "🙂", "\ud800", "İ",
]  # fmt: skip
text = st.lists(st.one_of(st.sampled_from(_TEXT), st.text(max_size=4)), max_size=30).map("".join)


def _collapsed(text: str, newline_breaks: bool) -> str:
    """What LineCollapser.collapse promises, one step at a time."""
    if newline_breaks:
        text = text.replace("\n", BREAK)
    text = _INVISIBLE_RE.sub("", text)
    text = "".join(c for c in text if c == BREAK or c.isspace() or c.isprintable())
    text = " ".join(text.split())
    text = text.replace(" " + BREAK, BREAK).replace(BREAK + " ", BREAK)
    text = re.sub(BREAK + "{2,}", "\n\n", text).replace(BREAK, "\n")
    return text.strip()


@given(text, st.booleans())
@example("\x85a\x85b", False)
@example(f"a {BREAK} {BREAK}b", False)
def test_line_collapser_is_its_steps_in_turn(value: str, newline_breaks: bool) -> None:
    if newline_breaks:
        value = value.replace(BREAK, "")
    collapser = LineCollapser(_INVISIBLE, BREAK)
    assert collapser.collapse(value, newline_breaks) == _collapsed(value, newline_breaks)


def test_normalize_keeps_paragraphs_and_drops_the_invisible() -> None:
    assert (
        normalize("Hi\u200b  there,\r\n\r\n\r\nmy\xa0order\x00 is late \n") == "Hi there,\n\nmy order is late"
    )
    assert normalize(f"a{BREAK} b{BREAK}{BREAK}{BREAK}c\nd", marked=True) == "a\nb\n\nc d"


def test_the_checkout_runs_the_compiled_build() -> None:
    build = cleaning_build()
    assert {"_scan.pyx", "_html.py", "_text.py", "core.py", "pii.py"} <= set(build.compiled)
    assert build.compiled == compiled_sources()
    assert build.fresh


def test_a_source_edited_after_its_build_is_stale(tmp_path: Path) -> None:
    for name in ("__init__.py", "_scan.pyx", "_scan.pyi", "core.py", "pii.py"):
        (tmp_path / name).write_text("")
    for built in ("_scan.so", "core.so"):
        (tmp_path / built).write_bytes(b"")
    os.utime(tmp_path / "core.so", (0, 0))
    build = cleaning_build(tmp_path)
    assert build == CleaningBuild(compiled=("_scan.pyx", "core.py"), missing=("pii.py",), stale=("core.py",))
    assert not build.fresh
