"""Log lines: key=value fields, and secrets that never reach the output."""

from __future__ import annotations

import logging

import pytest

from shared import logs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "connecting to postgresql://bridge:pa55@db:5432/x",
            "connecting to postgresql://bridge:***@db:5432/x",
        ),
        ("no password: postgresql://bridge@db/x", "no password: postgresql://bridge@db/x"),
        ("https://user:tok@gw:5000/v1/api and more", "https://user:***@gw:5000/v1/api and more"),
    ],
)
def test_url_passwords_are_masked(text: str, expected: str) -> None:
    """A URL with a password is masked wherever it appears in a line."""
    assert logs.redact(text) == expected


def test_registered_secrets_never_reach_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A hidden value is masked in the message, the fields and the traceback alike."""
    sentinel = "SENTINEL-7f3a9c"
    logs.hide(sentinel)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure("DEBUG")
    try:
        _fail_with(sentinel)
    except ValueError:
        logging.getLogger("test").exception(
            "failed %s", sentinel, extra=logs.fields(token=sentinel, account="DU1")
        )
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    error = capsys.readouterr().err
    assert sentinel not in error
    assert "failed *** token=*** account=DU1" in error
    assert "ValueError: bad token ***" in error


def _fail_with(secret: str) -> None:
    raise ValueError(f"bad token {secret}")
