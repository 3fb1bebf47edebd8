"""Turn raw mail bytes (as fetched over IMAP) into a `ParsedMail`.

Pure code: no network, no database. The mailbox holds whatever the Internet
sends back to the renewal question (human replies from every client, out of
office notices, bounces, list robots, spam, broken MIME), so every step is
defensive and `parse_mail` only ever raises `UnreadableMail`.
"""

from __future__ import annotations

import binascii
import codecs
import email
import email.policy
import hashlib
import quopri
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.utils import getaddresses
from html import unescape
from html.parser import HTMLParser
from types import MappingProxyType

__all__ = [
    "ParsedMail",
    "UnreadableMail",
    "decode_bytes",
    "decode_header_value",
    "html_to_text",
    "parse_mail",
    "strip_quotes",
]


@dataclass(frozen=True)
class ParsedMail:
    message_id: str | None
    content_hash: str
    sender: str | None
    return_path: str | None
    recipients: tuple[str, ...]
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    # A mapping is not hashable; leaving it out of the hash keeps the frozen
    # dataclass usable as a dict key / set member.
    headers: Mapping[str, str] = field(hash=False)
    text: str
    reply_text: str
    is_report: bool
    # Only recipients whose delivery *failed* (Action: failed, or no Action
    # field): a "delayed" warning DSN must not mark an address as bouncing.
    report_recipients: tuple[str, ...]
    defects: tuple[str, ...]


class UnreadableMail(Exception):
    """Nothing sensible can be extracted (not a mail, or an internal failure)."""


# --------------------------------------------------------------------------
# Charsets
# --------------------------------------------------------------------------

_CHARSET_ALIASES = {
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "latin1": "latin-1",
    "latin-1": "latin-1",
    "iso-8859-1": "latin-1",
    "iso8859-1": "latin-1",
    "iso_8859-1": "latin-1",
    "l1": "latin-1",
    "iso-8859-15": "iso8859-15",
    "iso8859-15": "iso8859-15",
    "latin-9": "iso8859-15",
    "latin9": "iso8859-15",
    "windows-1252": "cp1252",
    "cp1252": "cp1252",
    "x-cp1252": "cp1252",
    "win-1252": "cp1252",
    "us-ascii": "ascii",
    "ascii": "ascii",
}

# Python codecs that accept arbitrary labels from the Internet but are not
# charsets: they would interpret backslashes or hostnames instead of text.
_REFUSED_CODECS = frozenset(
    {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined"}
)


def _resolve_charset(label: str | None) -> str | None:
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    # RFC 2231 allows a language suffix: "utf-8*fr".
    name = name.split("*", 1)[0].strip()
    if not name:
        return None
    if name in _CHARSET_ALIASES:
        return _CHARSET_ALIASES[name]
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _REFUSED_CODECS:
        return None
    return info.name


def _fallback_decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode with the declared charset, else utf-8 → windows-1252 → latin-1.

    Never fails: latin-1 maps every byte.
    """
    codec = _resolve_charset(charset)
    if codec in ("latin-1", "iso8859-1"):
        # Mail labelled latin-1 is very often really windows-1252 (’ œ € in
        # 0x80-0x9F); strict cp1252 is a superset for every printable char.
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    if codec is not None:
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError, ValueError, TypeError):
            pass
    return _fallback_decode(data)


# --------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


_SURROGATE = re.compile("[\udc80-\udcff]")


def _raw_to_str(value: object) -> str:
    text = str(value)
    # The bytes parser keeps 8-bit header bytes as surrogate escapes (raw
    # UTF-8 headers are common); give them back their real characters.
    if _SURROGATE.search(text):
        try:
            text = _fallback_decode(text.encode("utf-8", "surrogateescape"))
        except UnicodeError:
            text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _unfold(value: str) -> str:
    value = re.sub(r"\r?\n(?=[ \t])", "", value)
    return re.sub(r"[\r\n]+", " ", value).strip()


def _decode_word(charset: str, encoding: str, payload: str) -> bytes | None:
    data = payload.encode("utf-8", "replace")
    if encoding in "bB":
        data = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        data += b"=" * (-len(data) % 4)
        try:
            return binascii.a2b_base64(data)
        except (binascii.Error, ValueError):
            return None
    return quopri.decodestring(data, header=True)


def decode_header_value(raw: object) -> str:
    """RFC 2047 decoding with our charset fallbacks, never raising.

    The default policy turns unknown charsets into U+FFFD and raises on some
    malformed words; a small decoder of our own gives the same result as the
    stdlib on sane input and something readable on the rest.
    """
    text = _unfold(_raw_to_str(raw))
    out: list[str] = []
    pending: bytearray = bytearray()
    pending_charset: str | None = None
    pos = 0
    last_was_word = False

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending:
            out.append(decode_bytes(bytes(pending), pending_charset))
        pending = bytearray()
        pending_charset = None

    for match in _ENCODED_WORD.finditer(text):
        gap = text[pos : match.start()]
        charset, encoding, payload = match.groups()
        decoded = _decode_word(charset, encoding, payload)
        if decoded is None:
            flush()
            out.append(gap + match.group(0))
            last_was_word = False
            pos = match.end()
            continue
        # Whitespace between two encoded words is not part of the text.
        if gap and not (last_was_word and not gap.strip()):
            flush()
            out.append(gap)
        if pending and charset.lower() != (pending_charset or "").lower():
            flush()
        pending_charset = charset
        pending += decoded
        last_was_word = True
        pos = match.end()
    flush()
    out.append(text[pos:])
    return re.sub(r"\s+", " ", "".join(out)).strip()


_ADDR_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+")
_MSGID_RE = re.compile(r"<([^<>]+)>")


def _clean_address(addr: str) -> str | None:
    addr = addr.strip().strip("<>").strip().rstrip(".").lower()
    if addr.count("@") != 1 or any(ch.isspace() for ch in addr):
        return None
    local, domain = addr.split("@")
    if not local or not domain:
        return None
    return addr


def _addresses(values: Iterable[str]) -> list[str]:
    found: list[str] = []
    for value in values:
        text = _unfold(value)
        got: list[str] = []
        try:
            for _name, addr in getaddresses([text]):
                cleaned = _clean_address(addr)
                if cleaned:
                    got.append(cleaned)
        except Exception:
            got = []
        if not got:
            # getaddresses gives up on some broken lists; a plain scan still
            # finds the addresses a human would see.
            got = [a for a in (_clean_address(m) for m in _ADDR_RE.findall(text)) if a]
        found.extend(got)
    return _dedupe(found)


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    result: list[str] = []
    for item in items:
        if item not in seen:
            seen.add(item)
            result.append(item)
    return result


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _message_ids(values: Iterable[str]) -> list[str]:
    ids: list[str] = []
    for value in values:
        text = _unfold(value)
        bracketed = _MSGID_RE.findall(text)
        if bracketed:
            ids.extend(f"<{_squash(inner)}>" for inner in bracketed if inner.strip())
        else:
            # Some senders drop the angle brackets; keep anything id-like.
            ids.extend(f"<{tok}>" for tok in re.split(r"[\s,;]+", text) if "@" in tok)
    return _dedupe(ids)


# --------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "br",
        "li",
        "tr",
        "table",
        "ul",
        "ol",
        "pre",
        "section",
        "article",
        "header",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "dd",
        "dt",
        "address",
        "center",
    }
)
_SKIP_TAGS = frozenset({"style", "script", "title", "noscript", "template", "xml"})


class _HTMLText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._cur: list[str] = []
        self._cur_depth = 0
        self._skip = 0
        self._quote = 0
        self._pre = 0

    def _newline(self, force: bool = False) -> None:
        # Block boundaries only end a non-empty line; <br> always does, which
        # is how webmails encode blank lines (<div><br></div>).
        if not force and not "".join(self._cur).strip():
            self._cur = []
            self._cur_depth = self._quote
            return
        line = "".join(self._cur).strip()
        prefix = "> " * self._cur_depth
        self.lines.append((prefix + line).rstrip() if line else prefix.rstrip())
        self._cur = []
        self._cur_depth = self._quote

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag == "blockquote":
            self._newline()
            self._quote += 1
            self._cur_depth = self._quote
        elif tag == "hr":
            # Outlook puts an <hr> above the quoted original: keep it as the
            # underscore separator the quote stripper knows.
            self._newline()
            self.lines.append("_" * 32)
        elif tag == "br":
            self._newline(force=True)
        elif tag in _BLOCK_TAGS:
            if tag == "pre":
                self._pre += 1
            self._newline()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag == "blockquote":
            self._newline()
            self._quote = max(0, self._quote - 1)
            self._cur_depth = self._quote
        elif tag in _BLOCK_TAGS and tag != "br":
            if tag == "pre":
                self._pre = max(0, self._pre - 1)
            self._newline()

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if not self._cur:
            self._cur_depth = self._quote
        if self._pre:
            parts = data.replace("\r", "").split("\n")
            for i, part in enumerate(parts):
                if i:
                    self._newline(force=True)
                self._cur.append(part.replace("\xa0", " "))
            return
        self._cur.append(re.sub(r"[\s\xa0]+", " ", data))

    def text(self) -> str:
        self._newline(force=True)
        return _tidy("\n".join(self.lines))


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")


def html_to_text(html: str) -> str:
    """HTML → plain text with line breaks kept and blockquotes as "> " lines."""
    parser = _HTMLText()
    try:
        parser.feed(html)
        parser.close()
        return parser.text()
    except Exception:
        # html.parser still raises on some malformed markup (e.g. odd "<![").
        stripped = re.sub(r"(?is)<(style|script)\b.*?</\1\s*>", " ", html)
        stripped = re.sub(r"(?i)<\s*(br|/p|/div|p|div)\b[^>]*>", "\n", stripped)
        stripped = re.sub(r"<[^>]*>", " ", stripped)
        stripped = unescape(stripped).replace("\xa0", " ")
        return _tidy(re.sub(r"[ \t]+", " ", stripped))


# --------------------------------------------------------------------------
# Quote stripping
# --------------------------------------------------------------------------

_FR_WROTE = re.compile(r"^(?:le|el)\s.*\d.*\s(?:a|ont)\s+[ée]crit\s*:?$", re.IGNORECASE)
_EN_WROTE = re.compile(r"^on\s.*\d.*\swrote\s*:?$", re.IGNORECASE)
_SEPARATOR = re.compile(
    r"^(?:-{2,}\s*(?:original message|message d['’]origine|forwarded message"
    r"|message transf[ée]r[ée]|message original)\s*-{2,}|_{20,})$",
    re.IGNORECASE,
)
_FROM_LINE = re.compile(r"^\*?(?:de|from)\s*:", re.IGNORECASE)
_SENT_LINE = re.compile(r"^\*?(?:envoy[ée]|sent|date)\s*:", re.IGNORECASE)
_SUBJECT_LINE = re.compile(r"^\*?(?:objet|subject)\s*:", re.IGNORECASE)
_MOBILE_SIGNATURE = re.compile(
    r"^(?:envoy[ée] (?:de|depuis) (?:mon|ma|un|une|l['’]|le|la)\b.*"
    r"|sent from my\b.*|get outlook for\b.*|obtenir outlook pour\b.*"
    r"|t[ée]l[ée]charger outlook pour\b.*)$",
    re.IGNORECASE,
)
# Quote headers are short; the cap also keeps the regexes linear on junk.
_MAX_HEADER_LEN = 400
_LIBRARY_MAX_CHARS = 20_000
_LIBRARY_MAX_LINE = 1_000


def _wrote_header_span(lines: list[str], i: int) -> int:
    """Number of lines (1-3) of a "Le … a écrit :" header starting at i, or 0."""
    first = lines[i].strip()
    low = first[:3].lower()
    if low not in ("le ", "on ", "el "):
        return 0
    pattern = _EN_WROTE if low == "on " else _FR_WROTE
    joined = ""
    for k in range(3):
        if i + k >= len(lines):
            break
        joined = f"{joined} {lines[i + k].strip()}".strip()
        if len(joined) > _MAX_HEADER_LEN:
            break
        if pattern.match(joined):
            return k + 1
    return 0


def _outlook_block(lines: list[str], i: int) -> bool:
    if not _FROM_LINE.match(lines[i].strip()):
        return False
    following = [line.strip() for line in lines[i + 1 :] if line.strip()][:4]
    return any(_SENT_LINE.match(line) for line in following) and any(
        _SUBJECT_LINE.match(line) for line in following
    )


def _clean_block(lines: list[str]) -> str:
    kept = [line for line in lines if not line.lstrip().startswith(">")]
    for idx, line in enumerate(kept):
        if line.rstrip() == "--":
            kept = kept[:idx]
            break
    while kept and (not kept[-1].strip() or _MOBILE_SIGNATURE.match(kept[-1].strip())):
        kept.pop()
    return _tidy("\n".join(line.rstrip() for line in kept)).strip()


def _own_rules(text: str) -> str:
    lines = text.split("\n")
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(">"):
            continue
        span = _wrote_header_span(lines, i)
        if span:
            head = _clean_block(lines[:i])
            if head:
                return head
            # Bottom-posting / inline answers: the new text is below the
            # quote, outside the "> " lines.
            return _own_rules("\n".join(lines[i + span :]))
        if _SEPARATOR.match(stripped) or _outlook_block(lines, i):
            # Outlook-style blocks are always top-posted: what follows is the
            # original, never the answer.
            return _clean_block(lines[:i])
    return _clean_block(lines)


def _library_reply(text: str) -> str:
    if len(text) > _LIBRARY_MAX_CHARS or any(
        len(line) > _LIBRARY_MAX_LINE for line in text.split("\n")
    ):
        # Its regexes backtrack badly on very long lines; our rules suffice.
        return ""
    try:
        from mailparser_reply import EmailReplyParser  # type: ignore[import-untyped]

        result = EmailReplyParser(languages=["fr", "en"]).parse_reply(text=text)
    except Exception:
        return ""
    return result if isinstance(result, str) else ""


def strip_quotes(text: str) -> str:
    """The new part of a reply: quoted original, quote headers and signature removed.

    Both mail-parser-reply and our own rules run; the library misses wrapped
    French headers and ">"-only quotes, our rules miss some of its client
    formats, so the shorter non-empty result wins (our rules are also applied
    to the library's output, which still contains the original when it missed).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    candidates: list[str] = []
    own = _own_rules(text)
    if own:
        candidates.append(own)
    library = _library_reply(text)
    if library and _is_line_prefix(library, text):
        refined = _own_rules(library)
        if refined:
            candidates.append(refined)
    return min(candidates, key=len) if candidates else ""


def _is_line_prefix(part: str, text: str) -> bool:
    """Whether `part` is made of the first whole lines of `text` (modulo strip).

    The library sometimes cuts inside a quote header (it returns "Le" for a
    bottom-posted reply); such a result is not a reply.
    """
    part_lines = [line.strip() for line in part.strip().split("\n")]
    text_lines = [line.strip() for line in text.strip().split("\n")]
    return text_lines[: len(part_lines)] == part_lines


# --------------------------------------------------------------------------
# MIME walk
# --------------------------------------------------------------------------

_KNOWN_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "received",
        "return-path",
        "mime-version",
        "content-type",
        "delivered-to",
        "reply-to",
        "sender",
        "in-reply-to",
        "references",
        "x-original-to",
        "envelope-to",
        "x-mailer",
        "user-agent",
        "auto-submitted",
        "content-transfer-encoding",
    }
)
_MAX_DEPTH = 30


@dataclass
class _Body:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    is_report: bool = False
    report_recipients: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    def text(self) -> str:
        plain = "\n\n".join(p.strip("\n") for p in self.plain if p.strip())
        if plain.strip():
            return plain
        return "\n\n".join(t for t in (html_to_text(h) for h in self.html) if t.strip())


def _unflow(text: str, delsp: bool) -> str:
    """Undo RFC 3676 format=flowed soft line breaks."""
    out: list[str] = []
    buf = ""
    for line in text.split("\n"):
        if line.startswith(" "):
            line = line[1:]  # space-stuffing
        if line != "-- " and line.endswith(" "):
            buf += line[:-1] if delsp else line
            continue
        out.append(buf + line)
        buf = ""
    if buf:
        out.append(buf)
    return "\n".join(out)


def _part_text(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        if not isinstance(raw, str):
            return ""
        payload = raw.encode("utf-8", "surrogateescape")
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    text = decode_bytes(payload, charset).replace("\r\n", "\n").replace("\r", "\n")
    try:
        flowed = str(part.get_param("format") or "").lower() == "flowed"
        delsp = str(part.get_param("delsp") or "").lower() == "yes"
    except Exception:
        flowed = delsp = False
    return _unflow(text, delsp) if flowed else text


def _header_blocks(text: str) -> list[list[tuple[str, str]]]:
    blocks: list[list[tuple[str, str]]] = []
    for chunk in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        blocks.append(_split_headers(chunk))
    return blocks


def _dsn_recipients(part: Message) -> list[str]:
    payload = part.get_payload()
    blocks: list[list[tuple[str, str]]] = []
    if isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, Message):
                blocks.append([(str(n), str(v)) for n, v in sub.raw_items()])
    elif isinstance(payload, str):
        blocks = _header_blocks(_part_text(part))
    found: list[str] = []
    for block in blocks:
        fields = [(name.strip().lower(), _unfold(_raw_to_str(v))) for name, v in block]
        action = next((v.lower() for n, v in fields if n == "action"), "")
        if action and not action.startswith("failed"):
            continue
        for name, value in fields:
            if name in ("final-recipient", "original-recipient"):
                addr = value.split(";", 1)[-1]
                cleaned = _clean_address(addr)
                if cleaned:
                    found.append(cleaned)
    return found


def _visit(part: Message, body: _Body, depth: int) -> None:
    body.defects.extend(type(d).__name__ for d in getattr(part, "defects", ()))
    if depth > _MAX_DEPTH:
        return
    ctype = part.get_content_type()
    if ctype == "message/delivery-status":
        body.is_report = True
        body.report_recipients.extend(_dsn_recipients(part))
        return
    if ctype.startswith("message/"):
        return  # the returned original of a bounce is not the reply
    if part.is_multipart():
        payload = part.get_payload()
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, Message):
                    _visit(sub, body, depth + 1)
        return
    try:
        disposition = part.get_content_disposition()
    except Exception:
        disposition = None
    if disposition == "attachment":
        return
    if ctype == "text/plain" or ctype.startswith("multipart/"):
        # A multipart whose boundary never shows up arrives as one string.
        body.plain.append(_part_text(part))
    elif ctype == "text/html":
        body.html.append(_part_text(part))


def _extract_body(msg: Message) -> _Body:
    body = _Body()
    if msg.get_content_type() == "multipart/report":
        body.is_report = True
    _visit(msg, body, 0)
    return body


def _split_headers(chunk: str) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for line in chunk.split("\n"):
        line = line.rstrip("\r")
        if line[:1] in (" ", "\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, f"{value}\n{line}")
            continue
        match = re.match(r"^([!-9;-~]+)[ \t]*:(.*)$", line)
        if match:
            headers.append((match.group(1), match.group(2).strip()))
    return headers


def _manual_parse(raw: bytes) -> tuple[list[tuple[str, str]], _Body]:
    """Last resort when the email package itself fails."""
    parts = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)
    head = parts[0].decode("ascii", "surrogateescape")
    headers = _split_headers(head)
    body = _Body()
    if len(parts) > 1:
        body.plain.append(_fallback_decode(parts[1]).replace("\r\n", "\n"))
    return headers, body


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


def parse_mail(raw: bytes) -> ParsedMail:
    try:
        return _parse(bytes(raw))
    except UnreadableMail:
        raise
    except Exception as exc:
        raise UnreadableMail(f"internal error: {type(exc).__name__}: {exc}") from exc


_HEADER_LINE = re.compile(rb"^(?:[!-9;-~]+[ \t]*:|[ \t]|From )")


def _repair_header_block(raw: bytes) -> bytes | None:
    """Drop stray lines from the header block, or None if there are none.

    The email package ends the headers at the first line without a colon, so
    one garbage line would turn every later header (Content-Type included)
    into body text.
    """
    match = re.search(rb"\r?\n\r?\n", raw)
    head, rest = (raw[: match.start()], raw[match.start() :]) if match else (raw, b"")
    lines = re.split(rb"(?<=\n)", head)
    kept = [line for line in lines if not line.strip() or _HEADER_LINE.match(line)]
    if len(kept) == len(lines) or not kept:
        return None
    return b"".join(kept) + rest


def _parse_with_email(raw: bytes) -> tuple[list[tuple[str, str]], _Body] | None:
    # compat32 first: headers are decoded by our own code from raw_items() either way, and
    # the default policy's header objects, built on every get(), tripled the parse time.
    for policy in (email.policy.compat32, email.policy.default):
        try:
            msg = email.message_from_bytes(raw, policy=policy)
            return [(str(n), str(v)) for n, v in msg.raw_items()], _extract_body(msg)
        except Exception:
            continue
    return None


def _parse(raw: bytes) -> ParsedMail:
    if not raw.strip():
        raise UnreadableMail("empty message")
    parsed = _parse_with_email(raw)
    if parsed is not None and "MissingHeaderBodySeparatorDefect" in parsed[1].defects:
        repaired = _repair_header_block(raw)
        reparsed = _parse_with_email(repaired) if repaired is not None else None
        if reparsed is not None:
            reparsed[1].defects[:0] = parsed[1].defects
            parsed = reparsed
    headers, body = parsed if parsed is not None else _manual_parse(raw)

    lowered = [(name.strip().lower(), value) for name, value in headers]
    if not any(name in _KNOWN_HEADERS for name, _ in lowered):
        raise UnreadableMail("no mail headers found")

    def raw_values(*names: str) -> list[str]:
        return [_raw_to_str(v) for n, v in lowered if n in names]

    decoded: dict[str, str] = {}
    for name, value in lowered:
        if name not in decoded:
            decoded[name] = decode_header_value(value)

    ids = _message_ids(raw_values("message-id")[:1])
    senders = _addresses(raw_values("from")[:1])
    return_paths = raw_values("return-path")
    return_path: str | None = None
    if return_paths:
        inner = _unfold(return_paths[0]).strip().strip("<>").strip()
        # Only a truly empty path is the RFC 5321 null sender.
        return_path = _clean_address(inner) or inner.lower()

    text = body.text()
    return ParsedMail(
        message_id=ids[0] if ids else None,
        content_hash=hashlib.sha256(raw).hexdigest(),
        sender=senders[0] if senders else None,
        return_path=return_path,
        recipients=tuple(
            _addresses(raw_values("to", "cc", "delivered-to", "x-original-to", "envelope-to"))
        ),
        in_reply_to=tuple(_message_ids(raw_values("in-reply-to"))),
        references=tuple(_message_ids(raw_values("references"))),
        subject=decoded.get("subject", ""),
        headers=MappingProxyType(decoded),
        text=text,
        reply_text=strip_quotes(text),
        is_report=body.is_report,
        report_recipients=tuple(_dedupe(body.report_recipients)),
        defects=tuple(_dedupe(body.defects)),
    )
