"""Who a visitor is: a random id, signed with this server's secret, kept in a browser cookie for a month.

The signature (HMAC-SHA256) means a cookie names only an id this server handed out: nobody can pick another
visitor's id to see their runs. The secret is created once in DigitLab's home (<home>/visitor.key, readable by its
owner only); deleting it makes every visitor new.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
from pathlib import Path

from .data import home_dir

COOKIE = "digitlab_visitor"
MAX_AGE = 30 * 24 * 3600  # seconds a browser keeps its visitor id
_VISITOR = re.compile(r"^[0-9a-f]{16}$")


def new_visitor() -> str:
    """A fresh visitor id: 64 random bits as 16 hex digits."""
    return secrets.token_hex(8)


def sign(visitor: str, secret: bytes) -> str:
    """The cookie value for `visitor`: 'id.signature'."""
    if not _VISITOR.match(visitor):
        raise ValueError(f"visitor must be 16 hex digits, got {visitor[:40]!r}")
    return f"{visitor}.{_signature(visitor, secret)}"


def verify(cookie: str | None, secret: bytes) -> str | None:
    """The visitor id a cookie value carries, or None when it is missing, malformed or not signed by `secret`."""
    if not isinstance(cookie, str):
        return None
    visitor, _, signature = cookie.partition(".")
    if not _VISITOR.match(visitor) or not hmac.compare_digest(signature, _signature(visitor, secret)):
        return None
    return visitor


def network_of(address: str | None, secret: bytes) -> str:
    """The network a visitor connects from, for the caps a new cookie must not reset: 16 hex digits keyed with
    `secret` (no address is kept), the same for every address of one IPv4 host or one IPv6 /64 (what a provider
    gives one subscriber). "" when the address is unknown or not an IP address: a visitor on this machine, or a
    server behind a proxy that Streamlit does not see through (then only the per-visitor caps hold)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return ""
    if ip.version == 6:
        ip = ip.ipv4_mapped or ipaddress.ip_network(f"{ip}/64", strict=False)
    return hmac.new(secret, b"network " + str(ip).encode(), hashlib.sha256).hexdigest()[:16]


def load_secret(path: Path | None = None) -> bytes:
    """This server's signing secret, created on first use (32 random bytes, file mode 0600)."""
    path = Path(path or home_dir() / "visitor.key")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_bytes()
        if len(secret) >= 32:
            return secret
        raise ValueError(f"{path} holds {len(secret)} bytes, not a DigitLab secret; delete it to make a new one")
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(secrets.token_bytes(32))
    return path.read_bytes()


def _signature(visitor: str, secret: bytes) -> str:
    return hmac.new(secret, visitor.encode(), hashlib.sha256).hexdigest()[:32]
