"""Logging for every process: one line per event on stderr, with secrets masked.

Lines look like `2026-11-24T19:34:02.123Z INFO writer stored batch records=12 lag_ms=4`, which
supervisord captures and rotates. Pass fields with `log.info("stored batch", extra=fields(...))`.
A filter masks URL passwords and every value registered with `hide()`, so a credential that
slips into a message or an exception text is still never written.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any
from urllib.parse import urlsplit

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)
_hidden: set[str] = set()


def hide(secret: str) -> None:
    """Never let `secret` reach a log line (it is replaced by ***)."""
    if secret:
        _hidden.add(secret)


def hide_url_password(url: str) -> None:
    """Never let the password inside `url` reach a log line, whatever form it is printed in."""
    hide(urlsplit(url).password or "")


def redact(text: str) -> str:
    text = _URL_PASSWORD.sub(r"\g<scheme>***@", text)
    for secret in _hidden:
        text = text.replace(secret, "***")
    return text


def fields(**values: Any) -> dict[str, Any]:
    """`extra=` argument carrying key=value fields for the line."""
    return {"fields": values}


class _LineFormatter(logging.Formatter):
    converter = staticmethod(time.gmtime)

    def format(self, record: logging.LogRecord) -> str:
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z"
        parts = [stamp, record.levelname, record.name, record.getMessage()]
        for key, value in getattr(record, "fields", {}).items():
            text = str(value)
            parts.append(f"{key}={text!r}" if " " in text or not text else f"{key}={text}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


def configure(level: str = "INFO") -> None:
    """Send every log line to stderr in the bridge's format (called once, from `__main__`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries' chatter stays at warning unless the operator asks for debug.
    for noisy in ("ib_async", "aiohttp.access", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
