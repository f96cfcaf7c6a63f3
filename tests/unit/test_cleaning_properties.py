"""Property-based checks: clean_email never raises and its output is tag-free, control-free and bounded.

Settings (example counts, derandomization) come from the Hypothesis profile tests/conftest.py loads. Every
counterexample a run has found is kept below as an ``@example``, so it is checked on every run.
"""

from __future__ import annotations

import re
import unicodedata

from hypothesis import assume, example, given
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from convclass.cleaning import clean_email
from convclass.cleaning._html import (
    _BLOCK_TAG_RE,
    _BREAK_BYTES,
    _MARKED_TAG,
    _TAGS,
    _hidden_selector,
    hidden_triggers,
    html_to_text,
    simple_text,
    tree_text,
)
from convclass.cleaning._text import (
    _DISCLAIMER_HEADING_WORDS,
    _DISCLAIMER_RE,
    _disclaimer_search,
    normalize,
)
from convclass.cleaning.pii import mask_pii

# What HTML reads as a tag: "<" (or "</") directly followed by an ASCII letter, up to the next ">".
# "< A>" and "<\x1fA>" are text, in browsers too.
_TAG_RE = re.compile(r"</?[a-zA-Z][^>]*>")
_FRAGMENTS = [
    "<div>", "</div>", "<p>", "</p>", "<br>", "<b>", "</b>", "<span style='display:none'>", "</span>",
    "<blockquote>", "</blockquote>", "<script>", "</script>", "<style>", "</style>", "<!--", "-->",
    '<div class="gmail_quote">', '<div id="divRplyFwdMsg">', "<table><tr><td>", "</td></tr></table>",
    "&amp;", "&nbsp;", "&#x0;", "&#8217;", "<", ">", "\n", "\r", "\t", "\x00", "\u200b", "\ue000", "\ufffd",
    "On Mon wrote:", "-- ", "> quoted", "jane@example.com", "https://x.example/a", "+44 20 7946 0958",
    "4111 1111 1111 1111", "Kind regards,", "Hi team,", "Ã©", "İ", "ﬁ", "日本", "🙂",
]  # fmt: skip
markupish = st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=20)), max_size=40).map("".join)


def _source_tags(markup: str) -> set[str]:
    """The tags of ``markup`` as HTML parses it, minus tag-like strings its parser reads as text.

    Text that merely looks like a tag is content: "&lt;b&gt;" decodes to "<b>", and "<\x1fA>" is text whose
    control character normalisation removes. Only a tag the parser saw as markup must never reach the output.
    """
    tags = set(_TAG_RE.findall(markup))
    if not tags:
        return tags
    tree = LexborHTMLParser(markup)
    parsed_text = tree.root.text(deep=True) if tree.root is not None else ""
    as_text = set(_TAG_RE.findall(normalize(parsed_text)))
    return tags - as_text


def _assert_clean(text: str, max_chars: int, source: str = "") -> None:
    surviving = set(_TAG_RE.findall(text)) & _source_tags(source)
    assert not surviving, text
    assert all(c == "\n" or unicodedata.category(c) not in ("Cc", "Cf", "Co", "Cs") for c in text), text
    assert len(text) <= max_chars
    assert text == text.strip()
    assert "\n\n\n" not in text
    assert "  " not in text


@given(subject=st.one_of(st.none(), st.text(max_size=60)), body=markupish, max_chars=st.integers(1, 400))
@example(subject=None, body="<\x1fA> text", max_chars=400)  # text that looks like a tag once \x1f goes
@example(subject=None, body="&lt;b&gt;bold&lt;/b&gt; <b>real</b>", max_chars=400)
@example(subject="<b>", body="<b>x</b>", max_chars=400)  # the subject is text, never markup
def test_html_cleaning_never_raises_and_output_has_no_tags_or_controls(
    subject: str | None, body: str, max_chars: int
) -> None:
    cleaned = clean_email(subject, body, "text/html", max_chars=max_chars)
    _assert_clean(cleaned.text, max_chars)
    # The subject is text, never markup: tags are checked on the body's text alone.
    _assert_clean(clean_email(None, body, "text/html", max_chars=max_chars).text, max_chars, body)


@given(body=st.binary(max_size=300), content_type=st.sampled_from(["text/html", "text/plain", "weird"]))
def test_arbitrary_bytes_never_raise(body: bytes, content_type: str) -> None:
    cleaned = clean_email(None, body, content_type)
    assert isinstance(cleaned.text, str)
    assert all(c == "\n" or unicodedata.category(c) not in ("Cc", "Cf", "Co", "Cs") for c in cleaned.text)


@given(body=st.text(max_size=300))
def test_plain_text_cleaning_never_raises_and_is_deterministic(body: str) -> None:
    first = clean_email("s", body, "text/plain")
    assert first == clean_email("s", body, "text/plain")
    assert all(c == "\n" or unicodedata.category(c) not in ("Cc", "Cf", "Co", "Cs") for c in first.text)


@given(words=st.lists(st.from_regex(r"[A-Za-z]{1,12}", fullmatch=True), min_size=1, max_size=30))
def test_escaped_customer_words_survive_html_wrapping(words: list[str]) -> None:
    sentence = " ".join(words)
    cleaned = clean_email(None, f"<div><p>{sentence}</p></div>", "text/html")
    # Greeting/sign-off removal only ever drops a whole line, and this body has just one.
    assert cleaned.text == sentence


_SIMPLE_PIECES = [
    "<div>", "</div>", "<p>", "</p>", "<br>", "<br/>", "</br>", "<b>", "</b>", "<span style='color:red'>",
    "</span>", "<a href='https://x.example/?a=1&amp;b=2'>", "</a>", "<li>", "</li>", "<ul>", "</ul>", "<h1>",
    "</h1>", "<font face=Arial>", "</font>", "<o:p>", "</o:p>", "<img src=x alt='alt text'>", "<hr>",
    "&amp;", "&nbsp;", "&lt;", "&gt", "&copy", "&#8217;", "&#x41;", "&#0;", "&#128;", "&notit;", "&bogus;",
    " ", "\n", "\r\n", "\t", "\x00", "text", "Zoë", "日本",
]  # fmt: skip


_content = st.lists(st.sampled_from(_SIMPLE_PIECES), max_size=12).map("".join)
_table = st.lists(st.lists(_content, min_size=1, max_size=3), min_size=1, max_size=3).map(
    lambda rows: (
        "<table><tbody>"
        + "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>\n" for row in rows)
        + "</tbody></table>"
    )
)


@given(pieces=st.lists(st.one_of(_content, _table), max_size=6))
def test_the_tag_free_fast_path_matches_the_parser(pieces: list[str]) -> None:
    markup = "".join(pieces).encode()
    lowered = markup.lower()
    marked = _BLOCK_TAG_RE.sub(_MARKED_TAG, markup)
    tags, _, simple, joined = _TAGS.scan(markup, lowered, _BREAK_BYTES)
    fast = simple_text(markup, lowered, tags, simple, joined)
    assert fast is not None
    parsed = tree_text(marked, lowered)
    # The parser drops NUL characters in text; normalisation removes them from the fast path's text later.
    assert normalize(fast, marked=True) == normalize(parsed, marked=True)


_LINES = [
    "> quoted",
    "",
    " ",
    "Hi team,",
    "my card was declined",
    "Kind regards,",
    "-- ",
    "Jane",
    "\t",
    "On Mon wrote:",
]


@given(lines=st.lists(st.sampled_from(_LINES), max_size=25))
def test_plain_text_line_structure_is_collapsed(lines: list[str]) -> None:
    text = clean_email(None, "\n".join(lines), "text/plain").text
    assert "\n\n\n" not in text
    assert text == text.strip()
    assert " \n" not in text
    assert "\n " not in text


_HIDDEN_ATTRIBUTES = [
    'style="display:none"', 'style="DISPLAY: none;max-height:0"', "hidden", 'aria-hidden="true"',
    'style="color:red"', 'aria-hidden="false"', 'title="display:none"', 'style="overflow:hidden"',
]  # fmt: skip
_TEXT_PIECES = ["text", " ", "\n", "&amp;", "&nbsp;", "Zoë", "<br>", "<img src=x style='display:none'>"]
# Well-formed markup (the byte-level cut only runs on markup without balance problems).
_balanced = st.recursive(
    st.lists(st.sampled_from(_TEXT_PIECES), max_size=5).map("".join),
    lambda inner: st.tuples(
        st.sampled_from(["div", "span", "b", "font", "center", "p", "li"]),
        st.sampled_from(["", *_HIDDEN_ATTRIBUTES]),
        st.lists(inner, max_size=3).map("".join),
    ).map(lambda parts: f"<{parts[0]} {parts[1]}>{parts[2]}</{parts[0]}>"),
    max_leaves=12,
)


@given(pieces=st.lists(_balanced, max_size=4))
def test_cutting_hidden_elements_from_the_bytes_matches_the_parser(pieces: list[str]) -> None:
    markup = "".join(pieces).encode()
    lowered = markup.lower()
    marked = _BLOCK_TAG_RE.sub(_MARKED_TAG, markup)
    parsed = tree_text(marked, lowered, hidden=_hidden_selector(lowered, hidden_triggers(lowered)))
    fast, _, _ = html_to_text(markup)
    assert normalize(fast, marked=True) == normalize(parsed, marked=True)


def _luhn_complete(digits: str) -> str:
    """``digits`` plus the check digit that makes the whole pass the Luhn check."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return digits + str((10 - total % 10) % 10)


_phone = st.builds(
    lambda code, trunk, groups, separator: f"+{code} {trunk}" + separator.join(groups),
    st.integers(1, 999).map(str),
    st.sampled_from(["", "(0) ", "(0)"]),
    st.lists(st.from_regex(r"[1-9][0-9]{1,3}", fullmatch=True), min_size=2, max_size=4),
    st.sampled_from([" ", "-", ".", " - "]),
)


@given(
    phone=_phone,
    before=st.sampled_from(["call ", "Tel: ", "M ", "("]),
    after=st.sampled_from([" today", ".", ")", ""]),
)
@example(phone="+44 (0) 7700 900123", before="call ", after=".")
def test_international_phone_numbers_are_masked_whole(phone: str, before: str, after: str) -> None:
    digits = sum(char.isdigit() for char in phone)
    assume(7 <= digits <= 15)  # a phone number by E.164's length
    text, counts = mask_pii(before + phone + after)
    assert not any(char.isdigit() for char in text), text
    assert counts == {"[PHONE]": 1}


@given(
    body=st.from_regex(r"[1-9][0-9]{14}", fullmatch=True),
    separator=st.sampled_from(["", " ", "-"]),
)
def test_luhn_valid_card_numbers_become_card_tokens(body: str, separator: str) -> None:
    number = _luhn_complete(body)
    written = separator.join(number[i : i + 4] for i in range(0, 16, 4))
    text, counts = mask_pii(f"my card {written} was declined")
    assert text == "my card [CARD] was declined"
    assert counts == {"[CARD]": 1}


_DISCLAIMER_FRAGMENTS = [
    "confidentiality notice", "legal disclaimer", "\n\n-- disclaimer\n", "\n* important notice:",
    "disclaimers", "this email is confidential", "this message may be privileged",
    "this message is for the sole use", "emails and any files are privileged",
    "the information in this email", "not the intended recipient", "isn't the intended recipient",
    "n't the intended recipient",
    "intended only for the named recipient", "consider the environment before printing", "registered office",
    "registergericht", "handelsregister", "diese e-mail ist vertraulich", "nicht der richtige adressat",
    "ce message est confidentiel", "l'intention exclusive", "el presente correo dirigido",
    "questo messaggio riservato", "dit e-mailbericht uitsluitend bestemd", "denna e-post konfidentiell",
    "this ", "the ", "\n", " ", "—", "x",
]  # fmt: skip


def _assert_disclaimer_search_agrees(text: str, position: int) -> None:
    lowered = text.lower()
    match = _DISCLAIMER_RE.search(lowered, position)
    headings = any(word in lowered for word in _DISCLAIMER_HEADING_WORDS)
    found = _disclaimer_search(lowered, position, headings=headings)
    assert found == (-1 if match is None else match.start()), (text, position)


@given(
    text=st.lists(st.one_of(st.sampled_from(_DISCLAIMER_FRAGMENTS), st.text(max_size=8)), max_size=12).map(
        "".join
    ),
    position=st.integers(0, 200),
)
def test_disclaimer_search_finds_what_the_disclaimer_regex_finds(text: str, position: int) -> None:
    """The search that tries the disclaimer regex only where a cue can start finds its leftmost match."""
    for start in {0, min(position, len(text))}:
        _assert_disclaimer_search_agrees(text, start)


def test_disclaimer_search_finds_every_cue() -> None:
    """Every cue, after text, on its own line and inside a word: a start literal missing for any is caught."""
    for cue in _DISCLAIMER_FRAGMENTS:
        for text in (f"hello {cue}", f"hello\n{cue} tail", f"x{cue}", cue):
            for position in range(len(text) + 1):
                _assert_disclaimer_search_agrees(text, position)
