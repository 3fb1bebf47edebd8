"""Recognise mails written by machines: they never count as an answer (§2.6).

Rule on ``X-Auto-Response-Suppress``: it is **ignored**. The header asks the
*recipient's* server not to send auto-replies back; Outlook/Exchange put it on
plenty of messages typed by humans (``All``, or ``OOF, AutoReply`` on mails
sent through some tenants), so even its "OOF"/"AutoReply" values say nothing
about the message itself. Real Exchange auto-replies are caught anyway by
their subject ("Réponse automatique", "Automatic reply") or by
``Auto-Submitted``, and combining it with those adds no information.
"""

from __future__ import annotations

import re
import unicodedata

from mail.parsing import ParsedMail

__all__ = ["bounce_recipients", "is_automatic"]

_ROBOT_LOCAL_PART = re.compile(
    r"^(?:mailer-daemon|postmaster|no-?reply|do-?not-?reply|ne-?pas-?repondre"
    r"|nepasrepondre|ne_pas_repondre|bounces?)(?:[+._-].*)?$"
)
_BOUNCER_LOCAL_PART = re.compile(r"^(?:mailer-daemon|postmaster)(?:[+._-].*)?$")
_REPLY_PREFIX = re.compile(
    r"^\s*(?:re|tr|fw|fwd|aw|wg|rif|sv|vs|ref)\s*(?:\[\d+\]|\(\d+\))?\s*:\s*"
)
_AUTO_SUBJECT_ANYWHERE = re.compile(
    r"reponse automatique|automatic reply|auto[- ]?reply|auto[- ]?response"
    r"|out of (?:the )?office|absent(?:\(e\)|e|s|es)? du bureau|absence du bureau"
    r"|message d[' ]?absence|notification d[' ]?absence"
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliverable|undelivered|non remis|non distribuable|delivery status notification"
    r"|mail delivery failed|delivery failure|returned mail|echec de (?:la )?remise"
    r"|notification d[' ]?etat de (?:la )?remise|message non delivre"
)
# Only at the start: "absence" alone also begins human subjects
# ("Absence de réponse ?").
_AUTO_SUBJECT_START = re.compile(r"^(?:auto\s*:|absent(?:\(e\)|e|s|es)?\b)")

_BOUNCE_PHRASES = re.compile(
    r"could ?not be delivered|couldn t be delivered|wasn t delivered|was not delivered"
    r"|delivery to the following recipient|following address(?:es)? failed"
    r"|failed permanently|permanent (?:error|failure)|undeliverable to|address not found"
    r"|user unknown|unknown user|mailbox unavailable|no such user|does not exist"
    r"|n a pas pu etre (?:remis|distribue|delivre)|impossible de remettre"
    r"|echec de (?:la )?remise|adresse introuvable|destinataire inconnu|n existe pas"
)
_DELAY_PHRASES = re.compile(
    r"delayed|will (?:be )?retr|still being retried|warning only|not yet been delivered"
    r"|retarde|differe|nouvelle tentative|pas encore ete remis"
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_BOUNCE_WINDOW = 8


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"['’`´]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def _subject_core(subject: str) -> str:
    text = _fold(subject)
    previous = None
    while previous != text:
        previous = text
        text = _REPLY_PREFIX.sub("", text)
    return text


def _local_part(address: str | None) -> str:
    return (address or "").split("@", 1)[0].lower()


def _header(m: ParsedMail, name: str) -> str | None:
    value = m.headers.get(name)
    return None if value is None else value.strip().lower()


def is_automatic(m: ParsedMail) -> str | None:
    """Reason code when the mail was produced by a machine, else None."""
    if m.is_report:
        return "report"
    auto_submitted = _header(m, "auto-submitted")
    if auto_submitted is not None and auto_submitted.split(";", 1)[0].strip() not in ("no", ""):
        return "auto-submitted"
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder"):
        value = _header(m, name)
        if value is not None and value not in ("no", "false", "0"):
            return "x-autoreply"
    precedence = _header(m, "precedence")
    if precedence in ("bulk", "junk", "list", "auto_reply", "auto-reply"):
        return "precedence"
    if "list-id" in m.headers or "list-unsubscribe" in m.headers:
        return "list"
    if m.return_path == "":
        return "null-return-path"
    if _ROBOT_LOCAL_PART.match(_local_part(m.sender)):
        return "robot-sender"
    subject = _subject_core(m.subject)
    if (
        _AUTO_SUBJECT_ANYWHERE.search(subject)
        or _BOUNCE_SUBJECT.search(subject)
        or _AUTO_SUBJECT_START.match(subject)
    ):
        return "subject"
    return None


def _looks_like_bounce(m: ParsedMail) -> bool:
    return (
        m.is_report
        or bool(_BOUNCER_LOCAL_PART.match(_local_part(m.sender)))
        or bool(_BOUNCE_SUBJECT.search(_subject_core(m.subject)))
    )


def bounce_recipients(m: ParsedMail) -> tuple[str, ...]:
    """Addresses whose delivery failed, or () when this is not a failure bounce.

    A DSN's machine-readable part is authoritative; the body is only scanned
    for non-DSN bounces, and never for delay warnings, since marking a live
    address as bouncing would get a candidate's file deleted.
    """
    if m.report_recipients:
        return m.report_recipients
    if not _looks_like_bounce(m):
        return ()
    content_type = (m.headers.get("content-type") or "").lower()
    if m.is_report and "delivery-status" in content_type:
        return ()  # a DSN with no failed recipient: delay or success notice
    lines = m.text.split("\n")
    folded = [_fold(line) for line in lines]
    if any(_DELAY_PHRASES.search(line) for line in folded):
        return ()
    ours = {a for a in (*m.recipients, m.sender or "", m.return_path or "") if a}
    found: list[str] = []
    for i, line in enumerate(folded):
        if not _BOUNCE_PHRASES.search(line):
            continue
        for original in lines[i : i + _BOUNCE_WINDOW]:
            for addr in _EMAIL.findall(original):
                addr = addr.lower().strip(".")
                if addr in ours or _ROBOT_LOCAL_PART.match(_local_part(addr)):
                    continue
                if addr not in found:
                    found.append(addr)
        if found:
            break
    return tuple(found)
