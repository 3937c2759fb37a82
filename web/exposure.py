"""What the web program lets through and how it answers a browser: the `Host` check against DNS
rebinding, the security headers of every response, and the session cookie. Pure: no I/O.

DNS rebinding: a hostile page in the operator's browser points its own name at 127.0.0.1 and
then reads this server as if it were its own origin; the browser still sends that name in
`Host`. So a request is served only when `Host` names this server: a loopback name, an IP
address (a literal cannot be rebound), the configured bind host, or a name the operator listed
in `BRIDGE_WEB_ALLOWED_HOSTS`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable, Mapping

LOOPBACK_NAMES = frozenset({"localhost"})
# Bind hosts that name no one: a client reaching them sends some other name.
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104  # compared, never bound here


def host_name(header: str) -> str | None:
    """The name in a `Host` header, without its port, lowercased; None when malformed."""
    value = header.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or not _is_port_suffix(rest):
            return None
        return name
    name, colon, port = value.rpartition(":")
    if not colon:
        return value or None
    if not port.isdigit() or ":" in name or not name:
        return None
    return name


def _is_port_suffix(rest: str) -> bool:
    return rest == "" or (rest.startswith(":") and rest[1:].isdigit())


def allowed_names(bind_host: str, extra: Iterable[str]) -> frozenset[str]:
    """The names (beyond IP literals) a request's `Host` may carry to be served."""
    names = set(LOOPBACK_NAMES) | {name.strip().lower() for name in extra if name.strip()}
    bind = bind_host.strip("[]").lower()
    if bind not in _WILDCARDS:
        names.add(bind)
    return frozenset(names)


def host_allowed(header: str | None, names: frozenset[str]) -> bool:
    """Does this `Host` header name this server? A request without one (HTTP/1.0, no browser
    sends that) has no name to judge and is let through."""
    if header is None:
        return True
    name = host_name(header)
    if name is None:
        return False
    if name in names:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


# Scripts only from this server (app.js, and plotly.js from the installed wheel): no inline
# script, no eval. Styles may be inline because plotly.js sets `style` attributes on the chart's
# elements (colour bars, images, hover labels); a style cannot run code. Images include data:
# and blob: for the favicon and plotly's own icons and exports.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Referrer-Policy": "no-referrer",
}
NO_STORE = "no-store"

SESSION_COOKIE = "bridge_web_session"
SESSION_MAX_AGE_S = 12 * 3600  # a trading day and its evening, then the token again


def same_secret(offered: str, secret: str) -> bool:
    """Constant-time equality of two texts as UTF-8 bytes: `hmac.compare_digest` refuses str
    with non-ASCII characters (a TypeError, so a 500), and a header or a token may have them.
    surrogatepass: a header's undecodable bytes come as lone surrogates, which still encode."""
    return hmac.compare_digest(_utf8(offered), _utf8(secret))


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def session_value(token: str, expires_s: int) -> str:
    """The cookie for a session ending at `expires_s` (Unix seconds): the end and its HMAC
    under the token. The token itself is never in it, and it cannot be extended."""
    return f"{expires_s}.{_signature(token, expires_s)}"


def session_expiry(token: str, value: str, now_s: float) -> int | None:
    """The end of the session `value` stands for, if it is genuine and not over yet."""
    expires, dot, signature = value.partition(".")
    if not dot or not expires.isascii() or not expires.isdigit():
        return None
    if not same_secret(signature, _signature(token, int(expires))):
        return None
    return int(expires) if int(expires) > now_s else None


def _signature(token: str, expires_s: int) -> str:
    message = f"bridge-web session until {expires_s}".encode()
    return hmac.new(_utf8(token), message, hashlib.sha256).hexdigest()
