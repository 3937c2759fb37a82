"""What the web program lets through and how it answers a browser: the `Host` check against DNS
rebinding, and the security headers of every response. Pure: no I/O.

DNS rebinding: a hostile page in the operator's browser points its own name at 127.0.0.1 and
then reads this server as if it were its own origin; the browser still sends that name in
`Host`. So a request is served only when `Host` names this server: a loopback name, an IP
address (a literal cannot be rebound), the configured bind host, or a name the operator listed
in `BRIDGE_WEB_ALLOWED_HOSTS`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

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
