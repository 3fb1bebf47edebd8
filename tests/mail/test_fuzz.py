"""Fuzzing: parse_mail never raises anything but UnreadableMail, classify never raises."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mail.automatic import bounce_recipients, is_automatic
from mail.classify import Answer, classify
from mail.parsing import ParsedMail, UnreadableMail, parse_mail

SAMPLES = sorted((Path(__file__).parent / "samples").glob("*.eml"))
SAMPLE_BYTES = [p.read_bytes() for p in SAMPLES]

# No example database: the fuzz run must not leave files in the repository.
FAST = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

CHARSET_LABELS = st.one_of(
    st.sampled_from(
        [
            "utf-8",
            "utf8",
            "UTF8MB4",
            "x-unknown",
            "latin1",
            "iso-8859-15",
            "windows-1252",
            "cp1252",
            "us-ascii",
            "utf-16",
            "utf-7",
            "unicode-escape",
            "rot13",
            "base64",
            "idna",
            "punycode",
            "",
            '"',
            "utf-8*fr",
            "gb2312",
            "ISO-2022-JP",
            "koi8-r",
        ]
    ),
    st.text(alphabet=st.characters(codec="ascii"), max_size=12),
)


def check(raw: bytes) -> None:
    try:
        mail = parse_mail(raw)
    except UnreadableMail as exc:
        # Allowed by the contract, but here it would hide a bug of ours.
        assert not str(exc).startswith("internal error"), exc
        return
    assert isinstance(mail, ParsedMail)
    assert isinstance(classify(mail.reply_text), Answer)
    assert isinstance(classify(mail.text), Answer)
    is_automatic(mail)
    bounce_recipients(mail)


@FAST
@given(st.binary(max_size=2000))
def test_random_bytes(raw: bytes) -> None:
    check(raw)


@FAST
@given(st.binary(max_size=600))
def test_random_bytes_after_headers(body: bytes) -> None:
    check(b"From: a@b.fr\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n" + body)


_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("dup_header"), st.integers(0, 10**6), st.integers(1, 5)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 200)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.integers(0, 5)),
)
_INSERTS = [b"\r\n", b"\n\n", b"--", b"=?", b"?=", b"\x00\xff"]


def mutate(raw: bytes, mutations: list[tuple[str, int, int]], charset: str) -> bytes:
    data = bytearray(raw)
    for kind, pos, arg in mutations:
        if not data:
            break
        pos %= len(data)
        if kind == "flip":
            data[pos] = arg
        elif kind == "truncate":
            del data[pos:]
        elif kind == "delete":
            del data[pos : pos + arg]
        elif kind == "insert":
            data[pos:pos] = _INSERTS[arg]
        elif kind == "dup_header":
            lines = bytes(data).split(b"\n")
            head = lines[: max(1, min(len(lines), 25))]
            line = head[pos % len(head)]
            data = bytearray(b"\n".join([line] * arg + lines))
    return re.sub(
        rb"charset=\"?[^\";\s]*\"?|=\?[^?\s]*\?",
        lambda m: (
            b"charset=" + charset.encode("ascii", "replace")
            if m.group(0).startswith(b"charset")
            else b"=?" + charset.encode("ascii", "replace") + b"?"
        ),
        bytes(data),
    )


@settings(FAST, max_examples=250)
@given(
    st.sampled_from(SAMPLE_BYTES),
    st.lists(_mutation, max_size=6),
    CHARSET_LABELS,
)
def test_mutated_samples(raw: bytes, mutations: list[tuple[str, int, int]], charset: str) -> None:
    check(mutate(raw, mutations, charset))


@FAST
@given(
    CHARSET_LABELS,
    st.sampled_from(["B", "Q", "b", "q", "x"]),
    st.text(max_size=40),
    st.text(max_size=60),
)
def test_random_encoded_words(charset: str, enc: str, payload: str, body: str) -> None:
    header = f"Subject: =?{charset}?{enc}?{payload}?= =?{charset}?{enc}?{payload[::-1]}?=\r\n"
    raw = (
        header.encode("utf-8", "surrogatepass")
        + f"From: =?{charset}?Q?{payload}?= <x@y.fr>\r\n".encode("utf-8", "surrogatepass")
        + f"Content-Type: text/html; charset={charset}\r\n\r\n".encode("utf-8", "surrogatepass")
        + body.encode("utf-8", "surrogatepass")
    )
    check(raw)


@FAST
@given(st.text(max_size=400))
def test_classify_any_text(text: str) -> None:
    assert isinstance(classify(text), Answer)


def test_pathological_long_lines_stay_fast() -> None:
    import time

    start = time.perf_counter()
    check(b"From: a@b.fr\n\n" + b"Le " + b"a " * 50_000 + b"\n" + b"On On " * 20_000)
    check(b"From: a@b.fr\nContent-Type: text/html\n\n" + b"<div>" * 20_000)
    assert time.perf_counter() - start < 5
