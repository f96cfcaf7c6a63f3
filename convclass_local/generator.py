"""Seeded generator of realistic inbound support emails, for tests, benchmarks and the demo.

Real support mail is messy: Outlook and Gmail HTML with inline styles, quoted earlier messages, signatures,
legal disclaimers, tracking pixels, hidden pre-headers, web-form tables, broken markup and text in many
scripts. The generator wraps labelled texts (public Banking77 rows, or built-in templates for a sample online
shop) in such bodies and yields ExportRecord-shaped dicts (see convclass.records), so every consumer exercises
the same paths as production data. The same seed always yields the same records.
"""

from __future__ import annotations

import csv
import html
import json
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

DEFAULT_TENANT = "acme-shop"
DEFAULT_LABEL_FIELD = "intent"
#: Where the public Banking77 dataset (CC BY 4.0, PolyAI-LDN/task-specific-datasets) is read from.
BANKING77_DEFAULT_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "banking77"

_ORDER = "{order}"
# Built-in sample tenant: an online shop. Weights are deliberately skewed, as real intent distributions are.
_TEMPLATES: dict[str, tuple[float, tuple[str, ...], tuple[str, ...]]] = {
    "order_status": (
        0.30,
        (
            "Where is my order {order}? I ordered it {days} days ago and it still has not arrived.",
            "The tracking page for order {order} has not changed since {weekday}. When will it be delivered?",
            "My parcel was supposed to arrive on {weekday} but nothing came. Can you check the delivery "
            "status?",
            "I am still waiting for the {product} I ordered. Has it been shipped yet?",
            "Could you tell me when order {order} will be dispatched? The estimated delivery date passed.",
            "The courier says the package was delivered but I never received it. Order {order}.",
            "Is there any update on the shipment of my {product}? It is taking much longer than expected.",
        ),
        ("Where is my order?", "Delivery status", "Order {order} not arrived", "Shipping delay", "Tracking"),
    ),
    "refund_request": (
        0.20,
        (
            "I returned the {product} {days} days ago and I still have not received my refund.",
            "Please refund order {order}, the {product} arrived damaged and I sent it back.",
            "I would like my money back for the {product}. It does not work as described.",
            "When will the refund of {amount} for my return be credited to my account?",
            "The {product} was the wrong size, I want to return it and get a full refund.",
            "You confirmed my return last {weekday} but the refund of {amount} is still missing.",
        ),
        ("Refund request", "Return and refund", "Money back please", "Refund not received", "Return {order}"),
    ),
    "billing_issue": (
        0.15,
        (
            "I was charged twice for order {order}. Please remove the duplicate payment of {amount}.",
            "My invoice shows {amount} but the price at checkout was lower. Why was I overcharged?",
            "There is a charge of {amount} on my credit card statement that I do not recognise.",
            "The VAT on my invoice for order {order} is wrong, can you send a corrected invoice?",
            "My payment failed but the money was still taken from my bank account.",
            "Why did you bill me {amount} this month? My plan should cost less.",
        ),
        (
            "Double charge",
            "Billing question",
            "Invoice wrong",
            "Unknown charge on my card",
            "Payment problem",
        ),
    ),
    "account_access": (
        0.12,
        (
            "I cannot log in to my account, the password reset email never arrives.",
            "My account is locked after too many login attempts. Please unlock it.",
            "I changed my phone and can no longer receive the two-factor code to sign in.",
            "The site says my email address is not registered but I have an account.",
            "How do I change the email address on my account? I lost access to the old one.",
        ),
        ("Cannot log in", "Account locked", "Password reset", "Login problem", "Access to my account"),
    ),
    "product_question": (
        0.10,
        (
            "Is the {product} compatible with the model I bought last year?",
            "Does the {product} come with a warranty, and for how long?",
            "What are the dimensions of the {product}? The product page does not say.",
            "Will the {product} be back in stock soon? I would like to buy two.",
            "Can the {product} be used outdoors in winter?",
        ),
        ("Product question", "Question about {product}", "Stock availability", "Warranty", "Specifications"),
    ),
    "cancel_subscription": (
        0.08,
        (
            "Please cancel my subscription, I no longer need the monthly delivery.",
            "How can I cancel my membership before the next renewal on {weekday}?",
            "I want to end my plan and close my account. Do not charge me again.",
            "Cancel the automatic renewal of my premium subscription, please.",
        ),
        ("Cancel subscription", "Cancellation", "Stop my membership", "End my plan"),
    ),
    "technical_problem": (
        0.05,
        (
            "The app crashes every time I open the checkout page.",
            "Your website shows an error 500 when I try to add the {product} to my basket.",
            "The discount code field does not work on the mobile app.",
            "The page keeps loading forever when I try to pay.",
        ),
        ("Website error", "App not working", "Bug at checkout", "Technical issue"),
    ),
    # Not in the sample tenant's history: customers start writing about it later (the demo's third act).
    "loyalty_points": (
        0.0,
        (
            "My loyalty points from order {order} were never added to my account.",
            "How many bonus points do I have left, and when do they expire?",
            "I tried to pay with my reward points at checkout but they were not accepted.",
            "The points balance in my member profile dropped by {days} points without any purchase.",
            "Can I transfer my loyalty points to my partner's account?",
        ),
        ("Loyalty points", "Missing bonus points", "Reward points", "Points balance", "Member points"),
    ),
}
#: Labels whose emails real customers (and agents) confuse with each other's: the overlap and the label noise
#: of :class:`Difficulty` move between these.
_NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "order_status": ("refund_request", "product_question"),
    "refund_request": ("billing_issue", "order_status"),
    "billing_issue": ("refund_request", "cancel_subscription"),
    "account_access": ("technical_problem",),
    "product_question": ("order_status",),
    "cancel_subscription": ("billing_issue", "account_access"),
    "technical_problem": ("account_access", "billing_issue"),
    "loyalty_points": ("order_status", "account_access"),
}


@dataclass(frozen=True)
class Difficulty:
    """What makes a real tenant's labels hard, for the built-in sample tenant (templates only).

    ``overlap``: the share of emails that also speak of a neighbouring label's topic (a refund request that
    complains about the charge); ``label_noise``: the share whose label an agent set to a neighbouring
    label. Both default to 0, which leaves every seed's emails as they were.
    """

    overlap: float = 0.0
    label_noise: float = 0.0


#: The sample tenant the demo trains: skewed labels, a fifth of emails mixing two topics, 6 % mislabelled.
REALISTIC = Difficulty(overlap=0.2, label_noise=0.06)

_PRODUCTS = (
    "coffee grinder", "espresso machine", "running shoes", "winter jacket", "desk lamp", "garden hose",
    "bluetooth speaker", "yoga mat", "blender", "kettle", "backpack", "office chair", "crème brûlée set",
)  # fmt: skip
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_FILLERS = (
    "I have been a loyal customer for years.",
    "This is quite urgent for me.",
    "I already tried calling but nobody answered.",
    "Thank you for your help.",
    "Please get back to me as soon as possible.",
    "I hope you can sort this out quickly.",
)
_NAMES = (
    "Jane Doe", "John Smith", "José García", "Zoë Müller", "Łukasz Nowak", "Søren Ødegaard",
    "Ana Lúcia Sousa", "李娜", "Ольга Иванова", "Mehmet Yılmaz", "Priya Sharma", "Aoife O'Brien",
    "François Dupont",
    "Nguyễn Văn An",
)  # fmt: skip
_COMPANIES = ("Example Corp", "Northwind Traders", "Contoso Ltd", "Fabrikam GmbH", "Initech", "Globex S.A.")
_GREETINGS = (
    "Hi,",
    "Hello,",
    "Hi team,",
    "Dear Sir or Madam,",
    "Hello ACME support,",
    "Good morning,",
    "Hey,",
)
_SIGNOFFS = ("Kind regards,", "Best regards,", "Thanks,", "Thank you,", "Cheers,", "Best,", "Sincerely,")
_DISCLAIMERS = (
    "CONFIDENTIALITY NOTICE: This e-mail and any attachments are confidential and may be privileged. If "
    "you are "
    "not the intended recipient, please notify the sender and delete it.",
    "This email and any files transmitted with it are confidential and intended solely for the use of the "
    "individual or entity to whom they are addressed.",
    "Disclaimer: the information in this message is provided without warranty. Registered office: 1 Main "
    "Street.",
)
_AGENT_REPLIES = (
    "Thank you for contacting ACME support. Your ticket number is {ticket}. We will reply within 24 hours.",
    "Hello, we have received your request and a member of our team will look into it shortly.",
    "Your order {order} has been updated. Reply to this email if you have any questions.",
)
_MOBILE = ("Sent from my iPhone", "Sent from my Samsung Galaxy smartphone.", "Get Outlook for Android")


@dataclass(frozen=True)
class LabelledText:
    """A text and its label (a Banking77 row or a template instance)."""

    text: str
    label: str


def load_banking77(folder: str | Path = BANKING77_DEFAULT_DIR, split: str = "train") -> list[LabelledText]:
    """Read ``{split}.csv`` (columns ``text,category``) of the public Banking77 dataset.

    Banking77 (Casanueva et al., 2020; CC BY 4.0) comes from PolyAI-LDN/task-specific-datasets,
    ``banking_data/``.
    """
    path = Path(folder) / f"{split}.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: get Banking77 from github.com/PolyAI-LDN/task-specific-datasets "
            "(banking_data/)"
        )
    with path.open(newline="", encoding="utf-8") as handle:
        return [LabelledText(row["text"], row["category"]) for row in csv.DictReader(handle)]


#: A label the built-in templates know but the sample tenant's history never carries (weight 0).
EMERGING_LABEL = "loyalty_points"


def template_labels() -> tuple[str, ...]:
    """Labels of the built-in sample tenant's history, most frequent first."""
    return tuple(label for label, spec in _TEMPLATES.items() if spec[0] > 0)


def template_weights() -> dict[str, float]:
    """Share of each label in the sample tenant's history (``EMERGING_LABEL`` included, at 0)."""
    return {label: spec[0] for label, spec in _TEMPLATES.items()}


def iter_emails(
    n: int | None = None,
    *,
    seed: int = 0,
    examples: Sequence[LabelledText] | None = None,
    tenant_id: str = DEFAULT_TENANT,
    label_field: str = DEFAULT_LABEL_FIELD,
    start: datetime | None = None,
    duplicate_rate: float = 0.01,
    label_weights: Mapping[str, float] | None = None,
    difficulty: Difficulty = Difficulty(),
) -> Iterator[dict[str, Any]]:
    """Yield ``n`` ExportRecord-shaped dicts.

    With ``examples``, email ``i`` wraps ``examples[i % len(examples)]`` verbatim (``n`` defaults to one email
    per example); without, texts come from the built-in templates with skewed label frequencies
    (``template_weights()``, or ``label_weights`` over template labels: a shifted stream).
    ``duplicate_rate`` of the emails are resends of an earlier email (same subject and body, new
    conversation), as customers do. ``difficulty`` adds overlapping topics and label noise to the templates.
    """
    if examples is not None and not examples:
        raise ValueError("examples must not be empty")
    total = n if n is not None else (len(examples) if examples is not None else 1000)
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not security
    when = start or datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    mix = dict(label_weights) if label_weights is not None else template_weights()
    unknown = set(mix) - set(_TEMPLATES)
    if unknown:
        raise ValueError(f"label_weights names labels without templates: {sorted(unknown)}")
    labels, weights = list(mix), list(mix.values())
    previous: list[dict[str, Any]] = []
    for index in range(total):
        when += timedelta(minutes=rng.randint(1, 90))
        conversation_id = f"{tenant_id}-{seed}-{index:07d}"
        if previous and rng.random() < duplicate_rate:
            original = rng.choice(previous)
            yield {**original, "conversation_id": conversation_id, "created_at": when, "updated_at": when}
            continue
        if examples is not None:
            example = examples[index % len(examples)]
            text, label, subject = example.text, example.label, _generic_subject(rng)
        else:
            text, subject, label = _sample_text(rng, rng.choices(labels, weights)[0], difficulty)
        body, content_type = _wrap(rng, text)
        record = {
            "conversation_id": conversation_id,
            "tenant_id": tenant_id,
            "created_at": when,
            "updated_at": when + timedelta(hours=rng.randint(1, 48)),
            "subject": subject,
            "body": body,
            "body_content_type": content_type,
            "labels": {label_field: label},
        }
        if len(previous) < 200:
            previous.append(record)
        yield record


def generate_emails(n: int | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """``list(iter_emails(...))``."""
    return list(iter_emails(n, **kwargs))


def _fill(rng: random.Random, template: str) -> str:
    return template.format(
        order=f"#{rng.randint(100000, 99999999)}"
        if rng.random() < 0.5
        else f"ORD-{rng.randint(10000, 999999)}",
        days=rng.randint(2, 30),
        weekday=rng.choice(_WEEKDAYS),
        product=rng.choice(_PRODUCTS),
        amount=rng.choice(("€", "$", "£")) + f"{rng.randint(5, 900)}.{rng.randint(0, 99):02d}",
    )


def _template_text(rng: random.Random, label: str) -> tuple[str, str]:
    _, sentences, subjects = _TEMPLATES[label]
    parts = [_fill(rng, s) for s in rng.sample(sentences, k=rng.choice((1, 1, 2)))]
    if rng.random() < 0.5:
        parts.insert(rng.randint(0, len(parts)), rng.choice(_FILLERS))
    subject = _fill(rng, rng.choice(subjects)) if rng.random() < 0.85 else _generic_subject(rng)
    return " ".join(parts), subject


def _sample_text(rng: random.Random, topic: str, difficulty: Difficulty) -> tuple[str, str, str]:
    """Text and subject about ``topic`` (sometimes a neighbouring one too), and the label an agent gave it."""
    text, subject = _template_text(rng, topic)
    if difficulty.overlap and rng.random() < difficulty.overlap:
        other, _ = _template_text(rng, rng.choice(_NEIGHBOURS[topic]))
        text = f"{text} {other}" if rng.random() < 0.5 else f"{other} {text}"
    label = topic
    if difficulty.label_noise and rng.random() < difficulty.label_noise:
        label = rng.choice(_NEIGHBOURS[topic])
    return text, subject, label


def _generic_subject(rng: random.Random) -> str:
    return rng.choice(
        ("", "Question", "Help needed", "Urgent!!", "Support request", "Re: Your ticket", "Hello")
    )


def _signature(rng: random.Random) -> list[str]:
    """Sign-off and signature lines (may carry PII: phone, e-mail, website)."""
    name = rng.choice(_NAMES)
    style = rng.random()
    if style < 0.25:
        return [rng.choice(_SIGNOFFS), name]
    if style < 0.45:
        return [
            rng.choice(_SIGNOFFS),
            name,
            rng.choice(_COMPANIES),
            f"Tel: +44 20 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
            f"{name.split()[0].lower()}@example.com",
        ]
    if style < 0.6:
        return ["-- ", f"{name} | {rng.choice(_COMPANIES)}", f"www.{rng.choice(('example', 'contoso'))}.com"]
    if style < 0.8:
        return [rng.choice(_SIGNOFFS), name, "", rng.choice(_MOBILE)]
    return [rng.choice(_MOBILE)]


def _quoted_reply(rng: random.Random) -> tuple[str, str]:
    reply = rng.choice(_AGENT_REPLIES).format(
        ticket=rng.randint(10000, 99999), order=rng.randint(100000, 999999)
    )
    day = rng.choice(_WEEKDAYS)[:3]
    header = (
        f"On {day}, {rng.randint(1, 28)} Mar 2026 at {rng.randint(8, 18)}:{rng.randint(10, 59)}, ACME Support"
    )
    return header + " <support@acme.example> wrote:", reply


def _agent_email_html(rng: random.Random, reply: str) -> str:
    """The help desk's earlier reply as a customer's client quotes it: a branded, table-based HTML email."""
    ticket = rng.randint(10000, 99999)
    cell = (
        'style="padding:0 24px;font-family:Helvetica,Arial,sans-serif;font-size:14px;line-height:21px;'
        'color:#2f3941"'
    )
    rows = "".join(
        f'<tr><td {cell}><p style="margin:0 0 12px 0">{_esc(paragraph)}</p></td></tr>'
        for paragraph in (
            reply,
            f"Your request #{ticket} is being handled by our team.",
            "You can add a comment by replying to this email.",
        )
    )
    footer_links = " | ".join(
        f'<a href="https://acme.example/{page}?utm_source=email&amp;t={rng.getrandbits(40):x}" '
        f'style="color:#8c8c8c;text-decoration:underline">{page.title()}</a>'
        for page in ("help", "privacy", "preferences", "unsubscribe")
    )
    return (
        '<div style="color:#b5b5b5">##- Please type your reply above this line -##</div>'
        '<table width="100%" cellpadding="0" cellspacing="0" border="0" style="background-color:#f4f4f4">'
        '<tbody><tr><td align="center" style="padding:24px 0">'
        '<table width="600" cellpadding="0" cellspacing="0" border="0" '
        'style="background-color:#ffffff;border:1px solid #e6e6e6;border-radius:4px">'
        '<tbody><tr><td style="padding:24px;border-bottom:1px solid #e6e6e6">'
        '<img src="https://cdn.acme.example/brand/logo-email.png" width="120" height="32" alt="ACME" '
        'style="display:block;border:0"></td></tr>'
        f'<tr><td style="padding:24px 24px 0 24px"><table width="100%" cellpadding="0" cellspacing="0" '
        f'border="0"><tbody>{rows}</tbody></table></td></tr>'
        '<tr><td style="padding:12px 24px 24px 24px;font-family:Helvetica,Arial,sans-serif;font-size:14px">'
        '<table cellpadding="0" cellspacing="0" border="0"><tbody><tr>'
        '<td style="padding-right:12px"><img src="https://cdn.acme.example/agents/42.png" width="40" '
        'height="40" alt="" style="border-radius:20px;display:block"></td>'
        '<td><strong style="color:#2f3941">Sam</strong><br>'
        '<span style="color:#68737d;font-size:12px">ACME Customer Care</span></td></tr></tbody></table>'
        "</td></tr></tbody></table>"
        '<table width="600" cellpadding="0" cellspacing="0" border="0"><tbody><tr>'
        '<td align="center" style="padding:16px 24px;font-family:Helvetica,Arial,sans-serif;font-size:11px;'
        f'color:#8c8c8c">{footer_links}<br>ACME Ltd, 1 Main Street, London EC1A 1AA<br>'
        f'<span style="color:#f4f4f4;font-size:1px">[{rng.getrandbits(64):x}]</span></td></tr>'
        "</tbody></table></td></tr></tbody></table>"
    )


_EARLIER_MESSAGES = (
    "I wrote to you last week about this and I am still waiting for an answer.",
    "Following up on my previous email, nothing has changed since then.",
    "Could you please look into my request? I have attached the details below.",
)


def _quoted_body(rng: random.Random, reply: str, depth: int = 0) -> str:
    """The quoted thread: the help desk's reply, often quoting the customer's earlier email in turn."""
    if rng.random() >= 0.7:
        return _esc(reply)
    body = _agent_email_html(rng, reply)
    if depth < 3 and rng.random() < 0.6:
        header, earlier_reply = _quoted_reply(rng)
        earlier = rng.choice(_EARLIER_MESSAGES)
        font = rng.choice(("Calibri", "Arial"))
        customer = "".join(
            _outlook_paragraph(line, font, "black")
            for line in (rng.choice(_GREETINGS), earlier, *_signature(rng))
        )
        body += (
            f'<div class="gmail_quote"><div dir="ltr" class="gmail_attr">{_esc(header)}</div>'
            f'<blockquote class="gmail_quote" style="margin:0 0 0 .8ex;border-left:1px #ccc solid;'
            f'padding-left:1ex">{customer}{_quoted_body(rng, earlier_reply, depth + 1)}</blockquote></div>'
        )
    return body


def _wrap(rng: random.Random, text: str) -> tuple[str, str]:
    """Return ``(body, content_type)``: ``text`` inside one of several mail-client styles."""
    style = rng.random()
    if style < 0.15:
        return _plain(rng, text), "text/plain"
    if style < 0.45:
        body = _gmail(rng, text)
    elif style < 0.75:
        body = _outlook(rng, text)
    elif style < 0.88:
        body = _apple(rng, text)
    else:
        body = _webform(rng, text)
    if rng.random() < 0.3:
        body = _tracking_pixel(rng) + body if rng.random() < 0.5 else body + _tracking_pixel(rng)
    if rng.random() < 0.12:
        body = _break_markup(rng, body)
    return body, "text/html"


def _esc(text: str) -> str:
    escaped = html.escape(text, quote=False)
    return escaped.replace("'", "&#8217;") if "'" in escaped and len(text) % 3 == 0 else escaped


def _plain(rng: random.Random, text: str) -> str:
    lines = [rng.choice(_GREETINGS), "", text, "", *_signature(rng)]
    if rng.random() < 0.3:
        lines += ["", rng.choice(_DISCLAIMERS)]
    if rng.random() < 0.4:
        header, reply = _quoted_reply(rng)
        lines += ["", header, *(f"> {line}" for line in reply.split(". "))]
    return "\r\n".join(lines) if rng.random() < 0.5 else "\n".join(lines)


def _gmail(rng: random.Random, text: str) -> str:
    parts = [f'<div dir="ltr"><div>{_esc(rng.choice(_GREETINGS))}</div><div><br></div>']
    parts.append(f"<div>{_esc(text)}</div><div><br></div>")
    signature = _signature(rng)
    if rng.random() < 0.4:
        parts.append(f'<div dir="ltr" class="gmail_signature">{_html_signature(rng, signature)}</div></div>')
    else:
        parts.append("<div>" + "<br>".join(_esc(line) for line in signature) + "</div></div>")
    if rng.random() < 0.5:
        header, reply = _quoted_reply(rng)
        parts.append(
            f'<br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">{_esc(header)}<br></div>'
            '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid '
            "rgb(204,204,204);"
            f'padding-left:1ex">{_quoted_body(rng, reply)}</blockquote></div>'
        )
    return "".join(parts)


_OUTLOOK_HEAD = (
    '<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
    'xmlns:w="urn:schemas-microsoft-com:office:word" '
    'xmlns:m="http://schemas.microsoft.com/office/2004/12/omml" '
    'xmlns="http://www.w3.org/TR/REC-html40"><head><meta http-equiv="Content-Type" content="text/html; '
    'charset=utf-8">'
    '<meta name="Generator" content="Microsoft Word 15 (filtered medium)"><!--[if !mso]><style>v\\:* '
    "{behavior:url(#default#VML);} o\\:* {behavior:url(#default#VML);}</style><![endif]--><style><!--\n"
    '@font-face {font-family:"Cambria Math"; panose-1:2 4 5 3 5 4 6 3 2 4;}\n'
    "@font-face {font-family:Calibri; panose-1:2 15 5 2 2 2 4 3 2 4;}\n"
    "@font-face {font-family:Aptos; panose-1:2 11 0 4 2 2 2 2 2 4;}\n"
    "p.MsoNormal, li.MsoNormal, div.MsoNormal "
    '{margin:0cm; font-size:11.0pt; font-family:"Calibri",sans-serif;}\n'
    "a:link, span.MsoHyperlink {mso-style-priority:99; color:#0563C1; text-decoration:underline;}\n"
    "span.EmailStyle17 "
    '{mso-style-type:personal-compose; font-family:"Calibri",sans-serif; color:windowtext;}\n'
    ".MsoChpDefault "
    '{mso-style-type:export-only; font-family:"Calibri",sans-serif; mso-fareast-language:EN-US;}\n'
    "@page WordSection1 {size:612.0pt 792.0pt; margin:72.0pt 72.0pt 72.0pt 72.0pt;}\n"
    "div.WordSection1 {page:WordSection1;}\n--></style><!--[if gte mso 9]><xml>\n"
    '<o:shapedefaults v:ext="edit" spidmax="1026" />\n</xml><![endif]--><!--[if gte mso 9]><xml>\n'
    '<o:shapelayout v:ext="edit">\n<o:idmap v:ext="edit" data="1" />\n</o:shapelayout></xml><![endif]-->'
    '</head><body lang="EN-GB" link="#0563C1" vlink="#954F72" style="word-wrap:break-word">'
    '<div class="WordSection1">'
)


def _outlook_paragraph(text: str, font: str, color: str) -> str:
    inner = _esc(text) if text else "&nbsp;"
    return (
        '<p class="MsoNormal"><span lang="EN-US" '
        f'style="font-size:11.0pt;font-family:&quot;{font}&quot;,sans-serif;'
        f'color:{color};mso-fareast-language:EN-GB">{inner}<o:p></o:p></span></p>\n'
    )


def _outlook(rng: random.Random, text: str) -> str:
    font = rng.choice(("Calibri", "Arial", "Aptos", "Times New Roman"))
    color = rng.choice(("#1F497D", "black", "windowtext", "#222222"))
    sentences = text.split(". ") if rng.random() < 0.3 else [text]  # some people break lines mid-text
    paragraphs = [rng.choice(_GREETINGS), "", ". ".join(sentences[:1])]
    if len(sentences) > 1:
        paragraphs.append(". ".join(sentences[1:]))
    body = "".join(_outlook_paragraph(p, font, color) for p in paragraphs)
    body += _outlook_paragraph("", font, color)
    signature = _signature(rng)
    if rng.random() < 0.5:
        body += _html_signature(rng, signature)
    else:
        body += "".join(_outlook_paragraph(p, font, color) for p in signature)
    if rng.random() < 0.35:
        body += (
            '<p class="MsoNormal"><span '
            'style="font-size:8.0pt;font-family:&quot;Arial&quot;,sans-serif;color:gray">'
            f"{_esc(rng.choice(_DISCLAIMERS))}<o:p></o:p></span></p>"
        )
    if rng.random() < 0.5:
        _, reply = _quoted_reply(rng)
        body += (
            '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
            '<p class="MsoNormal"><div id="divRplyFwdMsg"><b><span lang="EN-US">From:</span></b><span '
            'lang="EN-US"> '
            "ACME Support &lt;support@acme.example&gt;<br><b>Sent:</b> Monday, 2 March 2026 "
            "10:14<br><b>To:</b> "
            "customer<br><b>Subject:</b> Your request<o:p></o:p></span></div></p></div>"
            + f'<div class="MsoNormal">{_quoted_body(rng, reply)}</div>'
        )
    return _OUTLOOK_HEAD + body + "</div></body></html>"


def _html_signature(rng: random.Random, lines: list[str]) -> str:
    """A business signature as mail clients render it: a table with a logo, contact lines and social icons."""
    cells = "".join(
        f'<tr><td style="padding:0;font-family:Arial,sans-serif;font-size:9pt;color:#555555">'
        f'<span style="color:#555555">{_esc(line) if line else "&nbsp;"}</span></td></tr>'
        for line in lines
    )
    icons = "".join(
        f'<a href="https://{site}.example/acme-{rng.randint(1, 999)}" target="_blank">'
        f'<img src="https://cdn.example.net/sig/{site}.png" width="16" height="16" alt="{site}" '
        'style="border:0;display:inline-block;margin-right:4px"></a>'
        for site in ("linkedin", "twitter", "facebook", "instagram")[: rng.randint(1, 4)]
    )
    return (
        '<table class="MsoNormalTable" border="0" cellspacing="0" cellpadding="0" '
        'style="border-collapse:collapse">'
        '<tbody><tr><td width="90" valign="top" style="padding:0 12px 0 0">'
        f'<img src="https://cdn.example.net/logo/{rng.getrandbits(32):x}.png" width="80" height="80" '
        'alt="Logo" '
        'style="display:block;border:0"></td><td valign="top" style="padding:0">'
        f'<table border="0" cellspacing="0" cellpadding="0"><tbody>{cells}</tbody></table>'
        f'<p style="margin:6px 0 0 0">{icons}</p></td></tr></tbody></table>'
    )


def _apple(rng: random.Random, text: str) -> str:
    lines = "".join(f'<div class="">{_esc(line)}</div>' for line in _signature(rng))
    body = (
        '<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head>'
        '<body style="overflow-wrap: break-word; -webkit-nbsp-mode: space;">'
        f'{_esc(rng.choice(_GREETINGS))}<br class=""><br class="">{_esc(text)}<br class=""><br '
        f'class="">{lines}'
    )
    if rng.random() < 0.4:
        header, reply = _quoted_reply(rng)
        body += (
            f'<div><br><blockquote type="cite"><div>{_esc(header)}</div>'
            f"<div>{_quoted_body(rng, reply)}</div></blockquote></div>"
        )
    return body + "</body></html>"


def _webform(rng: random.Random, text: str) -> str:
    name = rng.choice(_NAMES)
    rows = (("Name", name), ("Email", f"customer{rng.randint(1, 9999)}@example.org"), ("Message", text))
    cells = "".join(
        f'<tr><td style="font-weight:bold;padding:4px">{_esc(k)}:</td><td '
        f'style="padding:4px">{_esc(v)}</td></tr>'
        for k, v in rows
    )
    preheader = '<div style="display:none;max-height:0;overflow:hidden">New contact form submission</div>'
    return (
        f"<!DOCTYPE html><html><head><style>td{{font-family:Arial}}</style><script>var "
        f't="{rng.random()}";</script>'
        f'</head><body>{preheader}<table role="presentation" width="600" cellpadding="0">{cells}</table>'
        '<p style="font-size:10px;color:#999">Submitted via the ACME contact form.</p></body></html>'
    )


def _tracking_pixel(rng: random.Random) -> str:
    return (
        f'<img src="https://t.mailtrack.example/o/{rng.getrandbits(48):x}.gif" width="1" height="1" alt="" '
        'style="display:none;border:0">'
    )


def _break_markup(rng: random.Random, body: str) -> str:
    """Damage the markup as badly-behaved mail software does (the text itself stays intact)."""
    kind = rng.randrange(4)
    if kind == 0:
        end_tag = "</span>" if "</span>" in body else "</p>"
        return body.replace(end_tag, "", 1)  # a missing end tag
    if kind == 1:
        return "<font face=Arial><b>" + body  # formatting elements never closed
    if kind == 2:
        return body + "</td></span></div><!-- [if mso]> unterminated"
    return body + '<div class="footer'  # cut off in the middle of a tag


def write_jsonl(records: Sequence[dict[str, Any]] | Iterator[dict[str, Any]], path: str | Path) -> int:
    """Write records as JSON Lines (timestamps as ISO 8601); return how many were written."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, default=_json_default, ensure_ascii=False) + "\n")
            count += 1
    return count


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def write_parquet(
    records: Sequence[dict[str, Any]] | Iterator[dict[str, Any]],
    path: str | Path | BinaryIO,
    *,
    row_group_size: int = 5000,
) -> int:
    """Write records as Parquet (``EXPORT_RECORD_SCHEMA``) to a path or binary file, in row groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from convclass.records import EXPORT_RECORD_SCHEMA

    count = 0
    batch: list[dict[str, Any]] = []
    sink = str(path) if isinstance(path, str | Path) else path
    with pq.ParquetWriter(sink, EXPORT_RECORD_SCHEMA) as writer:
        for record in records:
            batch.append({**record, "labels": list(record["labels"].items())})
            if len(batch) >= row_group_size:
                writer.write_table(pa.Table.from_pylist(batch, schema=EXPORT_RECORD_SCHEMA))
                count += len(batch)
                batch = []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=EXPORT_RECORD_SCHEMA))
            count += len(batch)
    return count
