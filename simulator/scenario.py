"""Scenarios: the portfolio the simulator serves, read from TOML or JSON and validated.

A scenario names accounts, underlyings (with a starting price and a volatility), options on them
and each account's positions; `seed` makes every price and Greek deterministic, `frozen` starts
the market frozen. `simulator/scenarios/default.toml` is the built-in one and documents the
format by example.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from simulator.errors import ScenarioError


@dataclass(frozen=True)
class Underlying:
    conid: int
    symbol: str
    sec_type: str  # STK, IND or FUT
    exchange: str
    primary_exchange: str
    spot: float
    vol: float
    multiplier: float = 1.0
    expiry_days: int | None = None  # futures only


@dataclass(frozen=True)
class OptionSpec:
    conid: int
    underlying: int
    right: str
    strike: float
    expiry_days: int
    multiplier: float
    sec_type: str = "OPT"
    trading_class: str | None = None
    has_greeks: bool = True


@dataclass(frozen=True)
class Scenario:
    seed: int
    frozen: bool
    accounts: tuple[str, ...]
    underlyings: tuple[Underlying, ...]
    options: tuple[OptionSpec, ...]
    positions: Mapping[str, Mapping[int, float]]  # account -> conid -> signed quantity

    def expiry(self, days: int, start: date) -> str:
        return (start + timedelta(days=days)).strftime("%Y%m%d")


def _build(cls: type[Any], raw: Mapping[str, Any], where: str) -> Any:
    try:
        return cls(**raw)
    except TypeError as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def from_mapping(raw: Mapping[str, Any], *, source: str = "scenario") -> Scenario:
    try:
        underlyings = tuple(
            _build(Underlying, item, f"{source}: underlyings[{index}]")
            for index, item in enumerate(raw["underlyings"])
        )
        options = tuple(
            _build(OptionSpec, item, f"{source}: options[{index}]")
            for index, item in enumerate(raw.get("options", []))
        )
        accounts = tuple(str(account) for account in raw["accounts"])
        positions: dict[str, dict[int, float]] = {account: {} for account in accounts}
        for entry in raw.get("positions", []):
            account = entry["account"]
            if account not in positions:
                raise ScenarioError(f"{source}: positions name unknown account {account!r}")
            for holding in entry["holdings"]:
                positions[account][int(holding["conid"])] = float(holding["quantity"])
    except KeyError as exc:
        raise ScenarioError(f"{source}: missing {exc}") from None
    scenario = Scenario(
        int(raw.get("seed", 0)), bool(raw.get("frozen", False)), accounts, underlyings, options,
        positions,
    )  # fmt: skip
    _check(scenario, source)
    return scenario


def _check(scenario: Scenario, source: str) -> None:
    conids = [item.conid for item in scenario.underlyings] + [o.conid for o in scenario.options]
    if len(conids) != len(set(conids)):
        raise ScenarioError(f"{source}: a conid is used twice")
    known = {item.conid for item in scenario.underlyings}
    for option in scenario.options:
        if option.underlying not in known:
            raise ScenarioError(f"{source}: option {option.conid} has no underlying")
        if option.right not in ("C", "P") or option.strike <= 0 or option.multiplier <= 0:
            raise ScenarioError(f"{source}: option {option.conid} needs C/P, strike, multiplier")
    for item in scenario.underlyings:
        if item.spot <= 0 or item.vol <= 0:
            raise ScenarioError(f"{source}: underlying {item.symbol} needs spot and vol > 0")
    holdable = set(conids)
    for account, holdings in scenario.positions.items():
        for conid in holdings:
            if conid not in holdable:
                raise ScenarioError(f"{source}: {account} holds unknown conid {conid}")


def load(path: Path | None) -> Scenario:
    """The scenario in `path` (.toml or .json), or the built-in default."""
    if path is None:
        text = resources.files("simulator.scenarios").joinpath("default.toml").read_text()
        return from_mapping(tomllib.loads(text), source="default.toml")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: {exc.strerror}") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    return from_mapping(raw, source=str(path))
