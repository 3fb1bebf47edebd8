"""Parsing of the sample mails, quote stripping and automatic-mail detection."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import pytest

from mail.automatic import bounce_recipients, is_automatic
from mail.classify import Answer, classify
from mail.parsing import (
    ParsedMail,
    UnreadableMail,
    decode_bytes,
    decode_header_value,
    html_to_text,
    parse_mail,
    strip_quotes,
)

SAMPLES = Path(__file__).parent / "samples"
OURS = "recrutement.aesh@ac-lille.fr"
ORIG_ID = "<relance-42.20261123100000@aesh.ac-lille.fr>"
RENEWAL_SUBJECT = "Votre candidature AESH : renouvellement à confirmer"


def load(name: str) -> ParsedMail:
    return parse_mail((SAMPLES / name).read_bytes())


# name -> expected fields (only the ones listed are checked)
EXPECTED: dict[str, dict[str, Any]] = {
    "gmail_reply_fr.eml": {
        "message_id": "<CAF3x9qNo=Vb8h+7LZq_Jx1@mail.gmail.com>",
        "sender": "lea.martin@gmail.com",
        "return_path": "lea.martin@gmail.com",
        "recipients": (OURS,),
        "in_reply_to": (ORIG_ID,),
        "references": (ORIG_ID,),
        "subject": "Re: " + RENEWAL_SUBJECT,
        "reply_text": "Bonjour,\n\nOui, je maintiens ma candidature pour la rentrée.\n\n"
        "Bien cordialement,\nLéa Martin",
        "automatic": None,
        "answer": Answer.KEEP,
    },
    "gmail_reply_en.eml": {
        "sender": "john.smith@gmail.com",
        "subject": "Re: " + RENEWAL_SUBJECT,
        "reply_text": "No thanks, I'm no longer interested.\n\nJohn",
        "automatic": None,
        "answer": Answer.WITHDRAW,
    },
    "outlook_reply_en.eml": {
        "message_id": "<AM6PR05MB6081C0A1D5B2E0F1A9B3C4D5E6"
        "@AM6PR05MB6081.eurprd05.prod.outlook.com>",
        "sender": "s.connor@outlook.com",
        "return_path": "s.connor@outlook.com",
        "recipients": (OURS, "kyle.connor@outlook.com"),
        "subject": "RE: " + RENEWAL_SUBJECT,
        "reply_text": "Yes, I want to keep my application.\n\nBest regards,\nSarah Connor",
        # X-Auto-Response-Suppress: All on a human mail: ignored by design
        "automatic": None,
        "answer": Answer.KEEP,
    },
    "exchange_reply_fr.eml": {
        "sender": "nadege.lefevre@laposte.net",
        "recipients": (OURS,),
        "in_reply_to": (ORIG_ID,),
        "references": ("<relance-41.20260523100000@aesh.ac-lille.fr>", ORIG_ID),
        "subject": "RE : " + RENEWAL_SUBJECT,
        "reply_text": "Bonjour,\n\nJe ne suis plus intéressée : j’ai trouvé un emploi dans le "
        "privé. Merci de retirer ma candidature.\n\nCordialement,\nNadège Lefèvre",
        "automatic": None,
        "answer": Answer.WITHDRAW,
    },
    "thunderbird_reply_fr.eml": {
        "message_id": "<5b1e2c4f-8a7d-4c3e-9f10-2b3c4d5e6f70@orange.fr>",
        "sender": "camille.dubois@orange.fr",
        "subject": "Re: " + RENEWAL_SUBJECT,
        # format=flowed joined, "-- " signature and the quote dropped
        "reply_text": "Bonjour,\n\nJe suis toujours intéressée, je maintiens ma candidature. "
        "Merci !",
        "automatic": None,
        "answer": Answer.KEEP,
    },
    "apple_mail_reply_fr.eml": {
        "message_id": "<8D3F2A1B-7C6E-4B5A-9D8C-1E2F3A4B5C6D@icloud.com>",
        "sender": "sophie.bernard@icloud.com",
        "subject": "Re: " + RENEWAL_SUBJECT,
        "reply_text": "Je ne souhaite pas retirer ma candidature.\n\nSophie",
        "automatic": None,
        "answer": Answer.KEEP,
    },
    "html_only_reply.eml": {
        "sender": "karim.benali@yahoo.fr",
        "recipients": (OURS,),  # To, Delivered-To and Envelope-To, deduplicated
        "references": (),
        "subject": "Re: " + RENEWAL_SUBJECT,
        "reply_text": "Oui je maintiens !\nKarim Benali & famille",
        "automatic": None,
        "answer": Answer.KEEP,
    },
    "bogus_charset_utf8mb4.eml": {
        "sender": "elodie.garnier@free.fr",
        "subject": "Re: " + RENEWAL_SUBJECT,  # x-unknown label, windows-1252 bytes
        "reply_text": "D'accord, je confirme : je reste candidate.\n\nÉlodie",
        "automatic": None,
        "answer": Answer.KEEP,
    },
    "bogus_charset_x_unknown.eml": {
        "message_id": "<000001d9a1b2$c3d4e5f6$a7b8c9d0@wanadoo.fr>",
        "sender": "jean-pierre.leclercq@wanadoo.fr",
        "recipients": (OURS,),
        "subject": "RE: TR: Votre candidature AESH",
        "reply_text": "Non merci.\nJe préfère arrêter là, l’année a été difficile ; bonne "
        "continuation à l’équipe.",
        "automatic": None,
        "answer": Answer.WITHDRAW,
    },
    "ooo_fr.eml": {
        "sender": "m.petit@ac-lille.fr",
        "subject": "Réponse automatique : Absent(e) du bureau : " + RENEWAL_SUBJECT,
        "automatic": "auto-submitted",
    },
    "ooo_en.eml": {
        "sender": "d.brown@example.co.uk",
        "subject": "Automatic reply: Out of Office",
        "automatic": "subject",
    },
    "dsn_bounce.eml": {
        "message_id": "<20261123090009.9C1B2A3F4E@smtp.ac-lille.fr>",
        "sender": "mailer-daemon@smtp.ac-lille.fr",
        "return_path": "",
        "recipients": (OURS,),
        "subject": "Undelivered Mail Returned to Sender",
        "is_report": True,
        # the "delayed" recipient is not reported as failed
        "report_recipients": ("paul.durand@exemple.fr",),
        "automatic": "report",
        "bounce": ("paul.durand@exemple.fr",),
    },
    "ndr_plain_fr.eml": {
        "sender": "postmaster@laposte.net",
        "subject": "Non remis : Votre candidature AESH",
        "is_report": False,
        "automatic": "robot-sender",
        "bounce": ("jean.dupont@laposte.net",),
    },
    "mailing_list_robot.eml": {
        "sender": "sympa@listes.exemple.fr",
        "return_path": "parents-info-owner@listes.exemple.fr",
        "subject": "Message en attente de modération",
        "automatic": "precedence",
    },
    "truncated_mime.eml": {
        "message_id": None,
        "sender": "hugo.moreau@sfr.fr",
        "subject": "Re: Votre candidature AESH",
        "text": "Je maintiens ma candidature, voici mon nouveau CV.\n\nHugo",
        "reply_text": "Je maintiens ma candidature, voici mon nouveau CV.\n\nHugo",
        "automatic": None,
        "answer": Answer.KEEP,
    },
}
HUMAN = sorted(name for name, exp in EXPECTED.items() if exp.get("automatic") is None)
AUTOMATIC = sorted(name for name, exp in EXPECTED.items() if exp.get("automatic"))


def test_every_sample_has_expectations() -> None:
    assert {p.name for p in SAMPLES.glob("*.eml")} == set(EXPECTED)
    assert len(EXPECTED) >= 12


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_fields(name: str) -> None:
    raw = (SAMPLES / name).read_bytes()
    mail = parse_mail(raw)
    assert mail.content_hash == hashlib.sha256(raw).hexdigest()
    expected = EXPECTED[name]
    for field in (f.name for f in dataclasses.fields(ParsedMail)):
        if field in expected:
            assert getattr(mail, field) == expected[field], field
    if "answer" in expected:
        assert classify(mail.reply_text) == expected["answer"]
    assert bounce_recipients(mail) == expected.get("bounce", ())


@pytest.mark.parametrize("name", HUMAN)
def test_human_replies_are_not_automatic(name: str) -> None:
    assert is_automatic(load(name)) is None


@pytest.mark.parametrize("name", AUTOMATIC)
def test_automatic_samples_are_detected(name: str) -> None:
    assert is_automatic(load(name)) == EXPECTED[name]["automatic"]


@pytest.mark.parametrize("name", HUMAN)
def test_reply_text_has_no_quoted_original(name: str) -> None:
    reply = load(name).reply_text
    assert reply
    assert "Souhaitez-vous la maintenir" not in reply
    assert "a écrit" not in reply and "wrote:" not in reply
    assert not any(line.startswith(">") for line in reply.splitlines())


def test_html_only_text_drops_style_and_script() -> None:
    mail = load("html_only_reply.eml")
    assert "font-family" not in mail.text and "tracking" not in mail.text
    assert "> Souhaitez-vous la maintenir" in mail.text  # blockquote kept as a quote


def test_exchange_quote_block_is_recognised_in_text() -> None:
    mail = load("exchange_reply_fr.eml")
    assert "Envoyé : lundi 23 novembre 2026 10:00" in mail.text
    assert "Envoyé" not in mail.reply_text


def test_headers_mapping_is_decoded_and_lower_cased() -> None:
    mail = load("outlook_reply_en.eml")
    assert mail.headers["x-auto-response-suppress"] == "All"
    assert mail.headers["thread-topic"] == RENEWAL_SUBJECT
    assert "Subject" not in mail.headers
    hash(mail)  # frozen and hashable despite the mapping


def test_dsn_text_is_the_human_readable_part_only() -> None:
    mail = load("dsn_bounce.eml")
    assert "could not" in mail.text
    assert "Repondez oui ou non" not in mail.text  # the returned original is skipped


def test_truncated_mime_reports_defects() -> None:
    mail = load("truncated_mime.eml")
    assert "MissingHeaderBodySeparatorDefect" in mail.defects
    assert "CloseBoundaryNotFoundDefect" in mail.defects


# ---------------------------------------------------------------------------
# automatic detection, rule by rule (on a human reply with one thing changed)


def _human(**changes: Any) -> ParsedMail:
    base = load("gmail_reply_fr.eml")
    headers = dict(base.headers)
    headers.update(changes.pop("add_headers", {}))
    return dataclasses.replace(base, headers=headers, **changes)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"add_headers": {"auto-submitted": "auto-replied"}}, "auto-submitted"),
        ({"add_headers": {"auto-submitted": "auto-generated; owner=x@y.fr"}}, "auto-submitted"),
        ({"add_headers": {"x-autoreply": "yes"}}, "x-autoreply"),
        ({"add_headers": {"x-autorespond": "Vacances"}}, "x-autoreply"),
        ({"add_headers": {"precedence": "bulk"}}, "precedence"),
        ({"add_headers": {"precedence": "auto_reply"}}, "precedence"),
        ({"add_headers": {"list-id": "<info.listes.fr>"}}, "list"),
        ({"add_headers": {"list-unsubscribe": "<mailto:x@y.fr>"}}, "list"),
        ({"return_path": ""}, "null-return-path"),
        ({"sender": "mailer-daemon@mx.fr"}, "robot-sender"),
        ({"sender": "no-reply@service.fr"}, "robot-sender"),
        ({"sender": "noreply@service.fr"}, "robot-sender"),
        ({"sender": "ne-pas-repondre@ac-lille.fr"}, "robot-sender"),
        ({"sender": "postmaster@exemple.fr"}, "robot-sender"),
        ({"is_report": True}, "report"),
        ({"subject": "RE: Réponse automatique : congés"}, "subject"),
        ({"subject": "TR: RE: reponse AUTOMATIQUE"}, "subject"),
        ({"subject": "Absence du bureau"}, "subject"),
        ({"subject": "Absent(e) jusqu'au 30/11"}, "subject"),
        ({"subject": "Absente"}, "subject"),
        ({"subject": "Out of Office: Re: candidature"}, "subject"),
        ({"subject": "Automatic reply: candidature"}, "subject"),
        ({"subject": "Autoreply: candidature"}, "subject"),
        ({"subject": "Auto: Votre candidature"}, "subject"),
        ({"subject": "Message d’absence"}, "subject"),
        ({"subject": "Undeliverable: Votre candidature"}, "subject"),
        ({"subject": "Non remis : Votre candidature"}, "subject"),
        ({"subject": "Delivery Status Notification (Failure)"}, "subject"),
        ({"subject": "Mail delivery failed: returning message to sender"}, "subject"),
    ],
)
def test_each_automatic_rule(changes: dict[str, Any], reason: str) -> None:
    assert is_automatic(_human(**changes)) == reason


@pytest.mark.parametrize(
    "changes",
    [
        {"add_headers": {"auto-submitted": "no"}},
        {"add_headers": {"x-auto-response-suppress": "All"}},
        {"add_headers": {"x-auto-response-suppress": "OOF, AutoReply"}},
        {"add_headers": {"precedence": "normal"}},
        {"subject": "RE: Absence de réponse de votre part ?"},
        {"subject": "Re: ma candidature (je serai absente lundi)"},
        {"sender": "replyto.lea@gmail.com"},
    ],
)
def test_not_automatic(changes: dict[str, Any]) -> None:
    assert is_automatic(_human(**changes)) is None


def test_bounce_recipients_empty_for_human_and_delay_notices() -> None:
    assert bounce_recipients(load("gmail_reply_fr.eml")) == ()
    assert bounce_recipients(load("ooo_fr.eml")) == ()
    delayed = dataclasses.replace(
        load("ndr_plain_fr.eml"),
        text="Delivery to the following recipient has been delayed: a@b.fr\n"
        "could not be delivered yet, will retry",
    )
    assert bounce_recipients(delayed) == ()


def test_bounce_recipients_from_english_body() -> None:
    mail = dataclasses.replace(
        load("ndr_plain_fr.eml"),
        subject="Mail delivery failed: returning message to sender",
        text="This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n"
        "  Old.Address@Example.ORG\n    host mx.example.org: 550 No such user\n",
    )
    assert bounce_recipients(mail) == ("old.address@example.org",)


# ---------------------------------------------------------------------------
# quote stripping on text fragments

QUOTE_CASES = [
    (
        "Oui\n\nLe 23/11/2026 à 10:00, Service AESH a écrit :\n> Souhaitez-vous ?",
        "Oui",
    ),
    (
        "Oui je maintiens\n\nLe lun. 23 nov. 2026 à 10:00, Service AESH <aesh@ac-lille.fr> a\n"
        "écrit :\n> question",
        "Oui je maintiens",
    ),
    (
        "Yes\n\nOn Mon, Nov 23, 2026 at 10:00 AM Service AESH <aesh@ac-lille.fr>\nwrote:\n> q",
        "Yes",
    ),
    ("Non merci\n\n-----Original Message-----\nFrom: x\nquestion", "Non merci"),
    ("Non merci\n\n-------- Message d'origine --------\nDe : x\nquestion", "Non merci"),
    ("Non merci\n-----Message d'origine-----\nDe : x\nquestion", "Non merci"),
    ("Je maintiens\n________________________________\nquestion", "Je maintiens"),
    (
        "Je maintiens\n\nDe : Service AESH\nEnvoyé : lundi 23 novembre 2026\nÀ : moi\n"
        "Cc : toi\nObjet : Renouvellement\n\nquestion",
        "Je maintiens",
    ),
    (
        "Je maintiens\n\n*From:* Service AESH\n*Sent:* Monday\n*To:* me\n*Subject:* x\nquestion",
        "Je maintiens",
    ),
    ("Oui\n> Souhaitez-vous ?\n>> plus ancien", "Oui"),
    ("Oui, je maintiens.\n-- \nMarie Curie\nAESH", "Oui, je maintiens."),
    ("Oui\n\nEnvoyé de mon iPhone", "Oui"),
    # bottom-posting: the answer is below the quote
    (
        "Le 23/11/2026 à 10:00, Service AESH a écrit :\n> Souhaitez-vous ?\n\nOui, bien sûr.\n",
        "Oui, bien sûr.",
    ),
    # a "De :" line alone is not an Outlook header block
    ("De : mon côté, je maintiens.\nMerci", "De : mon côté, je maintiens.\nMerci"),
    ("Très intéressée, ça me va : oui !", "Très intéressée, ça me va : oui !"),
    ("", ""),
    ("> tout est cité", ""),
]


@pytest.mark.parametrize(("text", "expected"), QUOTE_CASES)
def test_strip_quotes(text: str, expected: str) -> None:
    assert strip_quotes(text) == expected


def test_strip_quotes_handles_crlf() -> None:
    assert strip_quotes("Oui\r\n\r\n-----Original Message-----\r\nFrom: x") == "Oui"


# ---------------------------------------------------------------------------
# low-level decoding


@pytest.mark.parametrize(
    ("data", "charset", "expected"),
    [
        ("élève".encode(), "utf8", "élève"),
        ("élève".encode("latin-1"), "latin1", "élève"),
        ("l’œuvre".encode("cp1252"), "iso-8859-1", "l’œuvre"),  # mislabelled windows-1252
        ("€uro".encode("iso-8859-15"), "ISO-8859-15", "€uro"),
        ("l’été".encode("cp1252"), "windows-1252", "l’été"),
        ("l’été".encode("cp1252"), "cp1252", "l’été"),
        (b"plain", "us-ascii", "plain"),
        ("été".encode(), "us-ascii", "été"),  # 8-bit despite the label
        ("été".encode(), "x-unknown", "été"),
        ("été".encode("cp1252"), "utf8mb4", "été"),
        (b"\x81\x8d\xe9", "x-unknown", "\x81\x8dé"),  # latin-1, last resort
        (b"a\\x41", "unicode-escape", "a\\x41"),  # not a charset
        (b"abc", None, "abc"),
    ],
)
def test_decode_bytes(data: bytes, charset: str | None, expected: str) -> None:
    assert decode_bytes(data, charset) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("=?UTF-8?Q?L=C3=A9a_Martin?= <lea@x.fr>", "Léa Martin <lea@x.fr>"),
        ("=?utf-8?B?w6k=?= =?utf-8?B?w6k=?=", "éé"),  # whitespace between words dropped
        ("=?utf-8?B?ww==?= =?utf-8?B?qQ==?=", "é"),  # multibyte char split across words
        ("=?x-unknown?Q?=E9t=E9?=", "été"),
        ("=?utf8mb4?Q?=C3=A9t=C3=A9?=", "été"),
        ("=?utf-8?B?a?= x", "=?utf-8?B?a?= x"),  # undecodable: kept as is
        ("Re: plain\n\tfolded", "Re: plain folded"),
        ("sans =?iso-8859-1?q?accent_=E0?= ici", "sans accent à ici"),
    ],
)
def test_decode_header_value(raw: str, expected: str) -> None:
    assert decode_header_value(raw) == expected


def test_html_to_text() -> None:
    html = (
        "<html><head><style>p{color:red}</style><script>alert(1)</script></head><body>"
        "<p>Oui&nbsp;je&nbsp;maintiens&nbsp;!</p><div>Cordialement,<br>L&eacute;a &amp; Cie</div>"
        "<blockquote>Souhaitez-vous <b>maintenir</b> ?</blockquote></body></html>"
    )
    assert html_to_text(html) == (
        "Oui je maintiens !\nCordialement,\nLéa & Cie\n> Souhaitez-vous maintenir ?"
    )


def test_html_to_text_survives_broken_markup() -> None:
    assert "oui" in html_to_text("<div>oui<![if x]><b>non</b")


# ---------------------------------------------------------------------------
# header edge cases on built mails


def _mail(headers: str, body: str = "Oui") -> ParsedMail:
    return parse_mail((headers.strip("\n") + "\n\n" + body).encode("utf-8"))


def test_message_ids_without_brackets_and_junk_between() -> None:
    mail = _mail(
        "From: a@b.fr\nMessage-ID: abc@def\n"
        "In-Reply-To: <x@y> (sent by Outlook)\n"
        "References: <1@a>, <2@a>\n\t<3@a>,\n <4@\n a>  junk <1@a>"
    )
    assert mail.message_id == "<abc@def>"
    assert mail.in_reply_to == ("<x@y>",)
    assert mail.references == ("<1@a>", "<2@a>", "<3@a>", "<4@a>")


def test_addresses_and_return_path_variants() -> None:
    mail = _mail(
        'From: "Dupont, Marie" <Marie.Dupont@Exemple.FR>\n'
        "To: a@x.fr, =?utf-8?Q?B=C3=A9a?= <B@X.fr>\nCc: undisclosed-recipients:;\n"
        "Delivered-To: d@x.fr\nDelivered-To: a@x.fr\nReturn-Path: <>"
    )
    assert mail.sender == "marie.dupont@exemple.fr"
    assert mail.recipients == ("a@x.fr", "b@x.fr", "d@x.fr")
    assert mail.return_path == ""
    assert _mail("From: a@b.fr").return_path is None
    assert _mail("From: a@b.fr").subject == ""


def test_raw_utf8_headers() -> None:
    mail = _mail("From: Léa <lea@x.fr>\nSubject: Re: été")
    assert mail.subject == "Re: été"
    assert mail.sender == "lea@x.fr"


@pytest.mark.parametrize(
    "raw",
    [b"", b"   \r\n\r\n  ", b"\x00\x01\x02\xff\xfe garbage", b"hello world, no headers here"],
)
def test_unreadable(raw: bytes) -> None:
    with pytest.raises(UnreadableMail):
        parse_mail(raw)


def test_minimal_mail_is_readable() -> None:
    mail = parse_mail(b"Subject: oui\n")
    assert mail.subject == "oui"
    assert mail.text == ""
    assert mail.message_id is None
