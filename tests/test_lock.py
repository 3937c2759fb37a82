"""requirements.lock pins every dependency pyproject.toml declares, at a version it allows.

`make` installs from the lock, so a dependency added to pyproject.toml without `make lock` would
be missing on a fresh machine; this test says so before CI does.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", re.MULTILINE)


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return [Requirement(line) for line in lines]


def _pinned() -> dict[str, list[str]]:
    pins: dict[str, list[str]] = {}
    for name, version in _PIN.findall((ROOT / "requirements.lock").read_text()):
        pins.setdefault(canonicalize_name(name), []).append(version)
    return pins


def test_the_lock_is_read() -> None:
    """The pattern finds pins (a broken one would make the next test vacuous)."""
    assert "psycopg" in _pinned()


@pytest.mark.parametrize("requirement", _declared(), ids=str)
def test_every_declared_dependency_is_pinned(requirement: Requirement) -> None:
    """Every dependency pyproject.toml declares is pinned in requirements.lock inside its declared
    range."""
    versions = _pinned().get(canonicalize_name(requirement.name), [])
    assert versions, f"{requirement.name} is not in requirements.lock: run `make lock`"
    assert all(requirement.specifier.contains(v, prereleases=True) for v in versions), (
        f"requirements.lock pins {requirement.name}=={versions}, outside {requirement.specifier}"
    )
