"""clean_email: HTML structure, what is removed, PII masking, normalisation, damage reports and bad input."""

from __future__ import annotations

import time

import pytest

from convclass.cleaning import CLEANING_VERSION, DEFAULT_MAX_CHARS, MAX_INPUT_CHARS, PII_TOKENS, clean_email
from convclass.cleaning.pii import mask_pii


def text_of(body: str | bytes, content_type: str = "text/html", subject: str | None = None) -> str:
    return clean_email(subject, body, content_type).text


# --- HTML to text -------------------------------------------------------------------------------------------


def test_block_elements_and_br_become_lines_and_inline_elements_do_not() -> None:
    html = "<div>Hello <b>there</b>, my <span>card</span></div><p>is lost</p>line one<br>line two"
    lines = text_of(html).split("\n")
    assert [line for line in lines if line] == ["Hello there, my card", "is lost", "line one", "line two"]


def test_lists_and_table_cells_stay_apart() -> None:
    html = "<ul><li>first</li><li>second</li></ul><table><tr><td>Order</td><td>late</td></tr></table>"
    lines = text_of(html).split("\n")
    assert [line for line in lines if line] == ["first", "second", "Order", "late"]


def test_source_newlines_are_plain_whitespace_as_in_browsers() -> None:
    assert text_of("<p>my card\n   was\tdeclined</p>") == "my card was declined"


def test_script_style_head_comments_and_hidden_elements_are_dropped() -> None:
    html = (
        "<html><head><title>Newsletter</title><style>p{color:red}</style></head><body>"
        "<div style='DISPLAY: none'>preheader</div><span hidden>hidden span</span>"
        "<script>alert('x')</script><!-- a comment --><noscript>enable js</noscript>"
        "<p>Where is my parcel?</p>"
        '<img src="https://t.example/p.gif" width="1" height="1" style="display:none"></body></html>'
    )
    assert text_of(html) == "Where is my parcel?"


def test_entities_are_decoded() -> None:
    assert text_of("<p>Fish &amp; chips &lt;3 caf&eacute; &#8217;s&nbsp;x</p>") == "Fish & chips <3 café ’s x"


# --- quotes, signatures, disclaimers -----------------------------------------------------------------------


def test_gmail_quote_is_removed() -> None:
    html = (
        '<div dir="ltr">Still no refund.</div><div class="gmail_quote"><div class="gmail_attr">On Mon, 2 Mar'
        " 2026, Support &lt;s@acme.example&gt; wrote:</div><blockquote>We refunded you.</blockquote></div>"
    )
    cleaned = clean_email(None, html)
    assert cleaned.text == "Still no refund."
    assert cleaned.quote_stripped


def test_outlook_reply_header_and_everything_after_it_are_removed() -> None:
    html = (
        '<div class="WordSection1"><p class="MsoNormal">Please cancel my plan.</p>'
        '<div style="border-top:solid #E1E1E1 1pt"><div id="divRplyFwdMsg"><b>From:</b> Support<br>'
        "<b>Sent:</b> Monday</div></div><p>Earlier message text</p></div><p>Even more history</p>"
    )
    assert text_of(html) == "Please cancel my plan."


def test_apple_mail_and_plain_blockquotes_are_removed() -> None:
    apple = 'My app crashes.<br><blockquote type="cite"><div>On 2 Mar, Support wrote:</div>old</blockquote>'
    assert text_of(apple) == "My app crashes."
    inline = "<p>Question one</p><blockquote>quoted bit</blockquote><p>Question two</p>"
    assert text_of(inline) == "Question one\n\nQuestion two"


@pytest.mark.parametrize(
    "tail",
    [
        "On Tue, 3 Mar 2026 at 10:00, ACME Support <support@acme.example> wrote:\n> Thanks for writing",
        "On Tue, 3 Mar 2026 at 10:00, ACME Support <support@acme.example>\nwrote:\n> Thanks",
        "-----Original Message-----\nFrom: support\nSent: Monday",
        "From: ACME Support <support@acme.example>\nSent: Monday, 2 March 2026\nTo: me\nSubject: Re",
        "> a quoted line\n> another",
    ],
)
def test_plain_text_quotes_are_removed(tail: str) -> None:
    cleaned = clean_email(None, f"My parcel never arrived.\n\n{tail}", "text/plain")
    assert cleaned.text == "My parcel never arrived."
    assert cleaned.quote_stripped


@pytest.mark.parametrize(
    "signature",
    [
        "-- \nJane Doe\nwww.example.com",
        "Sent from my iPhone",
        "Get Outlook for Android",
        "Kind regards,\nJane Doe\nProcurement, Example Corp",
        "Thanks,\nJosé",
    ],
)
def test_signatures_and_sign_offs_are_removed(signature: str) -> None:
    cleaned = clean_email(None, f"I was charged twice.\n\n{signature}", "text/plain")
    assert cleaned.text == "I was charged twice."
    assert cleaned.signature_stripped


def test_disclaimers_are_removed() -> None:
    body = (
        "Please reset my password.\n\nCONFIDENTIALITY NOTICE: This e-mail and any attachments are "
        "confidential."
        " If you are not the intended recipient, delete it."
    )
    cleaned = clean_email(None, body, "text/plain")
    assert cleaned.text == "Please reset my password."
    assert cleaned.disclaimer_stripped


def test_greeting_line_is_dropped_but_a_sole_line_and_real_content_are_kept() -> None:
    assert text_of("Hi team,\n\nMy card is blocked.", "text/plain") == "My card is blocked."
    assert text_of("Hello, my card is blocked and I need help today.", "text/plain").startswith("Hello, my")
    assert text_of("Thanks", "text/plain") == "Thanks"
    # A sign-off is only cut at the end, after other content, and only with short lines after it.
    long_tail = (
        "Thanks,\n" + "This line is far too long to be a name or a job title in a signature block." * 2
    )
    assert "far too long" in text_of(f"My card is blocked.\n{long_tail}", "text/plain")


def test_removed_lines_leave_at_most_one_blank_line() -> None:
    assert text_of("first\n\n> quoted\n\nsecond", "text/plain") == "first\n\nsecond"


# --- normalisation
# --------------------------------------------------------------------------------------------


def test_nfkc_zero_width_controls_and_whitespace() -> None:
    body = "ｆｕｌｌｗｉｄｔｈ\u200b zero\u200dwidth\x07 bell\u00a0nbsp ﬁ  \t spaced\r\n\r\n\r\n\r\nnext"
    assert text_of(body, "text/plain") == "fullwidth zerowidth bell nbsp fi spaced\n\nnext"


def test_our_line_marker_in_the_input_cannot_inject_line_breaks() -> None:
    assert text_of("<p>one\ue000two</p>") == "onetwo"


def test_max_chars_truncates_at_a_word_boundary_and_flags_it() -> None:
    cleaned = clean_email(None, "word " * 100, "text/plain", max_chars=42)
    assert cleaned.truncated
    assert len(cleaned.text) <= 42
    assert cleaned.text.endswith("word")
    assert not clean_email(None, "short", "text/plain").truncated
    with pytest.raises(ValueError, match="max_chars"):
        clean_email(None, "x", max_chars=0)


def test_subject_and_body_are_combined_with_a_blank_line_and_reply_prefixes_dropped() -> None:
    assert clean_email("RE: Fwd: AW: Refund", "<p>Where is it?</p>").text == "Refund\n\nWhere is it?"
    assert clean_email("Only subject", "").text == "Only subject"
    assert clean_email(None, "Only body", "text/plain").text == "Only body"
    assert clean_email("", "", "text/plain").empty


# --- PII
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "masked", "token"),
    [
        ("mail jane.doe+x@example.co.uk now", "mail [EMAIL] now", "[EMAIL]"),
        ("see https://acme.example/track?id=1&a=2.", "see [URL].", "[URL]"),
        ("go to www.acme.example/help", "go to [URL]", "[URL]"),
        ("call +44 20 7946 0958 today", "call [PHONE] today", "[PHONE]"),
        ("call (555) 123-4567", "call [PHONE]", "[PHONE]"),
        ("call 555-123-4567", "call [PHONE]", "[PHONE]"),
        ("card 4111 1111 1111 1111 declined", "card [CARD] declined", "[CARD]"),
        ("card 4111-1111-1111-1111", "card [CARD]", "[CARD]"),
        ("amex 3782 822463 10005", "amex [CARD]", "[CARD]"),
        ("account 1234 5678 9012 3456", "account [NUMBER]", "[NUMBER]"),  # fails the Luhn check
        ("IBAN GB29 NWBK 6016 1331 9268 19, ok", "IBAN [NUMBER], ok", "[NUMBER]"),
        ("to FR1420041010050500013M02606 now", "to [NUMBER] now", "[NUMBER]"),
        ("call +44 (0) 7700 900123", "call [PHONE]", "[PHONE]"),
        ("call +1 (415) 555-0132.", "call [PHONE].", "[PHONE]"),
        ("T +33 1 42 68 53 00 |", "T [PHONE] |", "[PHONE]"),
        ("ring 020 7946 0321 today", "ring [PHONE] today", "[PHONE]"),
        ("ring (0)30 2345 6789", "ring [PHONE]", "[PHONE]"),
        ("ring 030/2345678", "ring [PHONE]", "[PHONE]"),
        ("order #12345678 late", "order #[NUMBER] late", "[NUMBER]"),
        ("order ORD-48213", "order ORD-[NUMBER]", "[NUMBER]"),
    ],
)
def test_pii_is_masked(raw: str, masked: str, token: str) -> None:
    text, counts = mask_pii(raw)
    assert text == masked
    assert counts == {token: 1}


def test_short_numbers_amounts_and_years_are_kept() -> None:
    text, counts = mask_pii("I paid £50.25 on 3 March 2026 for 2 items")
    assert text == "I paid £50.25 on 3 March 2026 for 2 items"
    assert counts == {}


def test_clean_email_reports_pii_counts_from_subject_and_body() -> None:
    cleaned = clean_email("Order 99887766", "<p>Mail me at a@b.example</p>")
    assert cleaned.text == "Order [NUMBER]\n\nMail me at [EMAIL]"
    assert cleaned.pii_counts == {"[NUMBER]": 1, "[EMAIL]": 1}
    assert set(PII_TOKENS) >= set(cleaned.pii_counts)


# --- damage reports and bad input
# -----------------------------------------------------------------------------


def test_malformed_markup_is_reported_not_fatal() -> None:
    cleaned = clean_email(None, "<div><b>My order</div></span><p>is late<!-- unterminated")
    assert cleaned.malformed_markup
    assert cleaned.markup_issues >= 3
    assert cleaned.text.startswith("My order")
    assert not clean_email(None, "<div><p>fine</p><br><img src=x></div>").malformed_markup


def test_bytes_in_utf8_are_decoded_without_flags() -> None:
    cleaned = clean_email(None, "<p>Zoë’s café</p>".encode())
    assert cleaned.text == "Zoë’s café"
    assert not cleaned.broken_encoding


def test_invalid_utf8_bytes_are_decoded_as_windows_1252_and_flagged() -> None:
    cleaned = clean_email(None, b"<p>Caf\xe9 cr\xe8me \x93quoted\x94</p>")
    assert cleaned.text == "Café crème “quoted”"
    assert cleaned.broken_encoding
    assert cleaned.encoding_issues >= 1


def test_mojibake_is_repaired_and_flagged() -> None:
    cleaned = clean_email(None, "<p>CafÃ© and crÃ¨me brÃ»lÃ©e</p>")
    assert cleaned.text == "Café and crème brûlée"
    assert cleaned.broken_encoding


def test_replacement_characters_are_flagged_and_removed() -> None:
    cleaned = clean_email(None, "bad \ufffd\ufffd bytes", "text/plain")
    assert cleaned.text == "bad bytes"
    assert cleaned.encoding_issues == 2


@pytest.mark.parametrize("body", [b"", "", None, b"\x00\x01\x02\xff\xfe", "   \n\t ", "<html></html>", "<"])
def test_empty_or_garbage_bodies_give_empty_or_short_text(body: str | bytes | None) -> None:
    cleaned = clean_email(None, body)
    assert "<" not in cleaned.text or body == "<"
    assert len(cleaned.text) < 10


def test_ten_megabyte_body_is_cut_and_flagged() -> None:
    body = "<html><body>" + "<p>my card was declined at the shop again</p>" * 250_000
    assert len(body) > 10_000_000
    cleaned = clean_email("Declined", body)
    assert cleaned.truncated
    assert len(cleaned.text) <= DEFAULT_MAX_CHARS
    assert cleaned.text.startswith("Declined\n\nmy card was declined")
    assert len(body) > MAX_INPUT_CHARS


def test_deeply_nested_markup_does_not_recurse_out() -> None:
    body = "<div>" * 50_000 + "deep text" + "</div>" * 50_000
    assert clean_email(None, body).text == "deep text"
    unclosed = "<span><b><i>" * 20_000 + "still here"
    cleaned = clean_email(None, unclosed)
    assert cleaned.text == "still here"
    assert cleaned.malformed_markup


def test_plain_text_with_angle_brackets_is_not_parsed_as_html() -> None:
    assert text_of("if a < b and c > d then", "text/plain") == "if a < b and c > d then"


def test_cleaning_version_is_a_nonempty_string() -> None:
    assert isinstance(CLEANING_VERSION, str)
    assert CLEANING_VERSION


# --- boilerplate that generalises ---------------------------------------------------------------------------

_MESSAGE = "Mein Paket ist nicht angekommen, bitte prüfen Sie den Versand."


@pytest.mark.parametrize(
    "device_line",
    [
        "Sent from my iPhone",  # English
        "Von meinem iPhone gesendet",  # German
        "Envoyé de mon iPhone",  # French
        "Enviado desde mi Samsung Galaxy",  # Spanish
        "Inviato da iPhone",  # Italian
        "Enviado do meu iPhone",  # Portuguese
        "Verzonden vanaf mijn iPad",  # Dutch
        "Skickat från min iPhone",  # Swedish
        "Sendt fra min Android-telefon",  # Danish / Norwegian
        "Lähetetty iPhonesta",  # Finnish
        "Wysłane z mojego iPhone'a",  # Polish
        "Odesláno z iPhonu",  # Czech
        "Στάλθηκε από το iPhone μου",  # Greek
        "iPhoneから送信",  # Japanese
        "发自我的iPhone",  # Chinese (simplified)
        "從我的 iPhone 傳送",  # Chinese (traditional)
        "Get Outlook for Android",
    ],
)
def test_device_lines_are_removed_in_many_languages(device_line: str) -> None:
    cleaned = clean_email(None, f"{_MESSAGE}\n\n{device_line}", "text/plain")
    assert cleaned.text == _MESSAGE
    assert cleaned.removed == {"device": 1}
    html = f"<div>{_MESSAGE}</div><div><br></div><div>{device_line}</div>"
    assert text_of(html) == _MESSAGE


def test_a_sentence_that_starts_like_a_device_line_is_content() -> None:
    body = "My order is late.\nSent from my old address the confirmation never arrived, please resend it."
    assert text_of(body, "text/plain") == body


def test_signature_blocks_go_by_structure_without_a_sign_off() -> None:
    plain = (
        "Can I swap the chair for the grey one before it ships?\n\n"
        "Łukasz Nowak\nHead of Operations\nGlobex S.A. | ul. Prosta 20, 00-850 Warszawa\n"
        "tel. +48 22 123 45 67"
    )
    cleaned = clean_email(None, plain, "text/plain")
    assert cleaned.text == "Can I swap the chair for the grey one before it ships?"
    assert cleaned.removed == {"signature": 1}
    table = (
        "<div>Please cancel my order.</div><table><tr><td><img src=logo.png></td><td><b>Jane Doe</b><br>"
        "Finance Director<br>Contoso GmbH<br>T +49 30 901820</td></tr></table>"
    )
    assert text_of(table) == "Please cancel my order."


def test_short_closing_lines_of_the_message_are_not_a_signature() -> None:
    body = "The tracking page has not changed since Friday.\n\nCan you help?\n\nUrgent please."
    assert text_of(body, "text/plain") == body


def test_signature_containers_are_removed_and_counted() -> None:
    html = (
        '<div dir="ltr">My invoice is wrong.<br>'
        '<div class="gmail_signature" data-smartmail="gmail_signature">'
        "Priya Sharma<br>Initech</div></div>"
        '<div id="ms-outlook-mobile-signature">Get Outlook for iOS</div>'
    )
    cleaned = clean_email(None, html)
    assert cleaned.text == "My invoice is wrong."
    assert cleaned.removed == {"signature": 1, "device": 1}
    assert cleaned.signature_stripped


@pytest.mark.parametrize(
    "disclaimer",
    [
        "Diese E-Mail enthält vertrauliche Informationen. Sind Sie nicht der richtige Adressat, löschen.",
        "Ce message et ses pièces jointes sont confidentiels, à l'intention exclusive du destinataire.",
        "Este mensaje y sus anexos son confidenciales y están dirigidos exclusivamente a su destinatario.",
        "Questo messaggio e i suoi allegati sono riservati.",
        "Dit bericht is vertrouwelijk en uitsluitend bestemd voor de geadresseerde.",
        "Please consider the environment before printing this email.",
        "Contoso GmbH, Sitz der Gesellschaft: Berlin, Registergericht: Amtsgericht Charlottenburg HRB 123456",
    ],
)
def test_disclaimers_in_other_languages_are_removed(disclaimer: str) -> None:
    cleaned = clean_email(None, f"Please reset my password.\n\n{disclaimer}", "text/plain")
    assert cleaned.text == "Please reset my password."
    assert cleaned.removed == {"disclaimer": 1}


@pytest.mark.parametrize(
    "header",
    [
        "Am Mo., 2. März 2026 um 10:14 Uhr schrieb ACME <support@acme.example>:",
        "Le lun. 2 mars 2026 à 10:14, ACME <support@acme.example> a écrit :",
        "El lun, 2 mar 2026 a las 10:14, ACME (<support@acme.example>) escribió:",
        "Il giorno lun 2 mar 2026 alle ore 10:14 ACME <support@acme.example> ha scritto:",
        "Op ma 2 mrt. 2026 om 10:14 schreef ACME <support@acme.example>:",
        "2026年3月2日(月) 10:14 ACME <support@acme.example>:",
        "---- On Mon, 02 Mar 2026 10:14:00 +0000 ACME wrote ----",
        "##- Please type your reply above this line -##",
        "Von: ACME <support@acme.example>\nGesendet: Montag, 2. März 2026\nAn: Kunde\nBetreff: Ihre Anfrage",
        "De : ACME\nEnvoyé : lundi 2 mars 2026 10:14\nÀ : Client\nObjet : Votre demande",
        "---------- Forwarded message ---------\nFrom: ACME <orders@acme.example>",
    ],
)
def test_quoted_history_in_other_languages_and_relays_is_removed(header: str) -> None:
    cleaned = clean_email(None, f"Still no refund.\n\n{header}\n\nWe refunded you.", "text/plain")
    assert cleaned.text == "Still no refund."
    assert cleaned.removed == {"quote": 1}


def test_a_sentence_mentioning_writing_is_not_a_reply_header() -> None:
    body = "Refund please.\nOn Monday I wrote to you about this and nobody answered."
    assert text_of(body, "text/plain") == body


@pytest.mark.parametrize(
    "style",
    [
        "display:none",
        "visibility:hidden",
        "mso-hide:all",
        "font-size:0",
        "font-size:0px;line-height:0",
        "max-height:0;overflow:hidden",
        "width:0;height:0;overflow:hidden",
        "opacity:0",
    ],
)
def test_hidden_and_zero_size_elements_are_removed(style: str) -> None:
    for tag in ("div", "span", "td"):
        html = (
            f'<table><tr><{tag} style="{style}">preview text</{tag}></tr></table><p>My card was declined.</p>'
        )
        if tag != "td":
            html = f'<{tag} style="{style}">preview text</{tag}><p>My card was declined.</p>'
        cleaned = clean_email(None, html)
        assert cleaned.text == "My card was declined."
        assert cleaned.removed == {"hidden": 1}


def test_small_but_visible_text_is_kept() -> None:
    html = (
        '<p style="font-size:0.9em;line-height:0">My card was declined.</p><div style="height:0">twice</div>'
    )
    assert text_of(html) == "My card was declined.\n\ntwice"


@pytest.mark.parametrize(
    ("unit", "content_type"),
    [
        ("gmail_quote ", "text/html"),
        ('type="cite" ', "text/html"),
        ("divRplyFwdMsg ", "text/html"),
        ("display:none ", "text/html"),
        ("signature ", "text/html"),
        ('<span style="display:none">x</span>', "text/html"),
        ("On Mon, 2 Mar 2026 wrote:\n", "text/plain"),
        ("confidential intended recipient ", "text/plain"),
    ],
)
def test_repeated_markers_take_linear_time(unit: str, content_type: str) -> None:
    """1 MB of repeated quote/hidden markers costs about ten times 100 KB of them (quadratic: a hundred)."""

    def seconds(size: int) -> float:
        body = "<p>Help me.</p>" + unit * (size // len(unit))
        best = float("inf")
        for _ in range(2):
            start = time.process_time()
            clean_email(None, body, content_type)
            best = min(best, time.process_time() - start)
        return best

    small, large = seconds(100_000), seconds(1_000_000)
    assert large < 5.0
    assert large < 30 * max(small, 0.002)
