"""Signed tokens for mails and links (HMAC-SHA256 with AESH_SECRET_KEY).

Tokens travel in e-mail local parts (`aesh+TOKEN@…`) and Telegram deep links
(`?start=TOKEN`, at most 64 characters of [A-Za-z0-9_-]), so they use that alphabet only.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Callable

_TOKEN = re.compile(r"^([a-z])([0-9]{1,12})x([0-9]{1,8})-([0-9a-f]{20})$")


@functools.lru_cache(maxsize=8)
def _keyed(secret: str) -> hmac.HMAC:
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def _mac(secret: str, payload: str) -> str:
    # A copy of the keyed state skips the key set-up (slow with OpenSSL 3): the renewal
    # sweep signs one token per candidature due.
    mac = _keyed(secret).copy()
    mac.update(payload.encode())
    return mac.hexdigest()[:20]


def sign(secret: str, purpose: str, subject_id: int, stamp: int) -> str:
    """`purpose` is one letter (r = renewal, v = account validation); `stamp` binds the token
    to one event (the day the renewal question was sent, an expiry day…)."""
    if len(purpose) != 1 or not purpose.islower():
        raise ValueError("purpose must be one lower-case letter")
    payload = f"{purpose}{subject_id}x{stamp}"
    return f"{payload}-{_mac(secret, payload)}"


def signer(secret: str, purpose: str) -> Callable[[int, int], str]:
    """`sign` with the secret and purpose fixed, for signing many tokens in a row."""
    sign(secret, purpose, 0, 0)  # validates the purpose
    keyed = _keyed(secret)

    def sign_one(subject_id: int, stamp: int) -> str:
        payload = f"{purpose}{subject_id}x{stamp}"
        mac = keyed.copy()
        mac.update(payload.encode())
        return f"{payload}-{mac.hexdigest()[:20]}"

    return sign_one


def verify(secret: str, token: str) -> tuple[str, int, int] | None:
    """(purpose, subject_id, stamp) of a genuine token; None for anything forged or altered."""
    m = _TOKEN.match(token.strip().lower())
    if m is None:
        return None
    payload = f"{m.group(1)}{m.group(2)}x{m.group(3)}"
    if not hmac.compare_digest(_mac(secret, payload), m.group(4)):
        return None
    return m.group(1), int(m.group(2)), int(m.group(3))


FIND = re.compile(r"[a-z][0-9]{1,12}x[0-9]{1,8}-[0-9a-f]{20}", re.IGNORECASE)


def find_tokens(text: str) -> list[str]:
    """Candidate tokens inside an address or a header (verification is separate)."""
    return FIND.findall(text)
