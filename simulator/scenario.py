"""Scenarios: the portfolio the simulator serves, read from TOML or JSON and validated.

A scenario names accounts (with a base currency, cash and exchange rates), underlyings (with a
starting price, a volatility, a currency and how their daily history follows the benchmark),
options on them and each account's positions; `seed` makes every price, Greek and daily bar
deterministic, `frozen` starts the market frozen. Two are built in: `default` (the reference,
documenting the format by example) and `trader` (currencies, magnifiers, CFDs, warrants, the
Portal's rounding); `--scenario trader` selects it.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from simulator.errors import ScenarioError

BUILT_IN = ("default", "trader", "explain")
SEC_TYPES = ("STK", "ETF", "IND", "FUT", "CFD", "WAR", "BOND", "CASH", "CRYPTO")
PORTAL_VALUES = ("exact", "as_gateway")


@dataclass(frozen=True)
class Underlying:
    """Anything with its own price path: stocks, indices, futures, CFDs, warrants."""

    conid: int
    symbol: str
    sec_type: str  # one of SEC_TYPES
    exchange: str
    primary_exchange: str
    spot: float  # the path's centre, and yesterday's close
    vol: float
    multiplier: float = 1.0
    expiry_days: int | None = None  # futures only
    currency: str = "USD"
    price_magnifier: int = 1  # 100 for cents-quoted contracts (ZC, ZS, ZW)
    beta: float = 1.0  # how its daily returns follow the benchmark's (what the bars are made of)
    idiosyncratic_vol: float = 0.10  # annualised; the rest of its daily returns
    history: bool = True  # False: the gateway serves no daily bars for it
    history_days: int = 252  # how many daily bars it has (a recent listing has fewer)
    # Weekdays its exchange is closed (no bar), counted back from the last bar's day (1): 2 is
    # the weekday before it. The benchmark keeps every weekday unless it says otherwise.
    closed_days: tuple[int, ...] = ()
    # Its bars are in its own currency: its returns in the benchmark's currency (what `beta`
    # makes) converted at the daily rate of the scenario's CASH underlying whose symbol is this
    # currency (EUR, quoted in USD). False: its bars follow the benchmark in its own currency.
    fx_bars: bool = False
    # The share of the benchmark's day still to come when its exchange closes (Eurex, 17:30
    # CET, closes 4.5 h before NYSE's 16:00 ET, of a 6.5-h NYSE session: 0.69): its close on
    # day t sees only the rest of the benchmark's day-t move, and the remainder shows in its
    # day t+1 return. 0: it closes with the benchmark.
    close_before_benchmark: float = 0.0
    quotes: bool = True  # False: the gateway sends no price for it
    portal_multiplier: bool = True  # False: Portal positions carry a null multiplier
    portal_last_prefix: str = ""  # "C" (prior close) or "H" (halted) before the Portal's last
    portal_last_only: bool = False  # the Portal serves its last price alone: no mark, bid, ask
    volume: float = 10_000.0  # the day's volume so far
    quote_size: float = 100.0  # bid and ask sizes


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
    exchange: str | None = None  # default: SMART for stock and index options, else the future's
    # Greeks the gateway reports whatever the price (delta, gamma, theta, vega): a fixture for
    # values a client must parse exactly, such as a theta that the Portal writes "-2.000".
    fixed_greeks: Mapping[str, float] | None = None


@dataclass(frozen=True)
class Listing:
    """Another listing of a symbol that only the Portal's symbol search names (the same ETF on
    another exchange, in another currency): listed before the scenario's own instruments in
    `/iserver/secdef/search`, described by `/trsrv/secdef`, and nothing else (no quotes, no
    bars, not holdable): a client that takes it for the instrument gets no price."""

    conid: int
    symbol: str
    exchange: str  # its primary exchange
    currency: str
    sec_type: str = "STK"
    name: str = ""


@dataclass(frozen=True)
class Scenario:
    seed: int
    frozen: bool
    accounts: tuple[str, ...]
    underlyings: tuple[Underlying, ...]
    options: tuple[OptionSpec, ...]
    positions: Mapping[str, Mapping[int, float]]  # account -> conid -> signed quantity
    # account -> conid -> average price paid, in the instrument's quoted units (absent: the
    # price when the simulator started)
    costs: Mapping[str, Mapping[int, float]] = field(default_factory=dict)
    base_currency: Mapping[str, str] = field(default_factory=dict)  # account -> "USD" (default)
    cash: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # account, ccy: amount
    # base currency -> currency -> value of one unit of it in the base currency
    exchange_rates: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    benchmark: str = "SPY"
    portal_values: str = "exact"  # or "as_gateway": rounded strings, fields a snapshot apart
    # Socket account values per currency keyed "$LEDGER-ExchangeRate", not "ExchangeRate" (the
    # TWS setting of the 2026 API release notes, on by default for new users)
    ledger_prefix: bool = False
    listings: tuple[Listing, ...] = ()  # other listings the Portal's search names first

    def expiry(self, days: int, start: date) -> str:
        return (start + timedelta(days=days)).strftime("%Y%m%d")

    def currency_of(self, account: str) -> str:
        return self.base_currency.get(account, "USD")


def _build(cls: type[Any], raw: Mapping[str, Any], where: str) -> Any:
    try:
        return cls(**raw)
    except TypeError as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def from_mapping(raw: Mapping[str, Any], *, source: str = "scenario") -> Scenario:
    try:
        underlyings = tuple(
            _build(
                Underlying,
                {**item, "closed_days": tuple(int(k) for k in item.get("closed_days", ()))},
                f"{source}: underlyings[{index}]",
            )
            for index, item in enumerate(raw["underlyings"])
        )
        options = tuple(
            _build(OptionSpec, item, f"{source}: options[{index}]")
            for index, item in enumerate(raw.get("options", []))
        )
        accounts = tuple(str(account) for account in raw["accounts"])
        positions: dict[str, dict[int, float]] = {account: {} for account in accounts}
        costs: dict[str, dict[int, float]] = {account: {} for account in accounts}
        for entry in raw.get("positions", []):
            account = entry["account"]
            if account not in positions:
                raise ScenarioError(f"{source}: positions name unknown account {account!r}")
            for holding in entry["holdings"]:
                positions[account][int(holding["conid"])] = float(holding["quantity"])
                if "cost" in holding:
                    costs[account][int(holding["conid"])] = float(holding["cost"])
        scenario = Scenario(
            int(raw.get("seed", 0)), bool(raw.get("frozen", False)), accounts, underlyings,
            options, positions, costs,
            base_currency={str(k): str(v) for k, v in raw.get("base_currency", {}).items()},
            cash={
                str(account): {str(ccy): float(amount) for ccy, amount in amounts.items()}
                for account, amounts in raw.get("cash", {}).items()
            },
            exchange_rates={
                str(base): {str(ccy): float(rate) for ccy, rate in rates.items()}
                for base, rates in raw.get("exchange_rates", {}).items()
            },
            benchmark=str(raw.get("benchmark", "SPY")),
            portal_values=str(raw.get("portal_values", "exact")),
            ledger_prefix=bool(raw.get("ledger_prefix", False)),
            listings=tuple(
                _build(Listing, item, f"{source}: listings[{index}]")
                for index, item in enumerate(raw.get("listings", []))
            ),
        )  # fmt: skip
    except KeyError as exc:
        raise ScenarioError(f"{source}: missing {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise ScenarioError(f"{source}: {exc}") from None
    _check(scenario, source)
    return scenario


def _check(scenario: Scenario, source: str) -> None:
    conids = [item.conid for item in scenario.underlyings] + [o.conid for o in scenario.options]
    if len(conids + [item.conid for item in scenario.listings]) != len(
        set(conids) | {item.conid for item in scenario.listings}
    ):
        raise ScenarioError(f"{source}: a conid is used twice")
    known = {item.conid for item in scenario.underlyings}
    for option in scenario.options:
        if option.underlying not in known:
            raise ScenarioError(f"{source}: option {option.conid} has no underlying")
        if option.right not in ("C", "P") or option.strike <= 0 or option.multiplier <= 0:
            raise ScenarioError(f"{source}: option {option.conid} needs C/P, strike, multiplier")
    _check_underlyings(scenario, source)
    holdable = set(conids)
    for account, holdings in scenario.positions.items():
        for conid in holdings:
            if conid not in holdable:
                raise ScenarioError(f"{source}: {account} holds unknown conid {conid}")


def _check_underlyings(scenario: Scenario, source: str) -> None:
    for item in scenario.underlyings:
        if item.spot <= 0 or item.vol <= 0:
            raise ScenarioError(f"{source}: underlying {item.symbol} needs spot and vol > 0")
        if item.sec_type not in SEC_TYPES:
            raise ScenarioError(f"{source}: {item.symbol}: sec_type is one of {SEC_TYPES}")
        if not 1 <= item.history_days <= 252:
            raise ScenarioError(f"{source}: {item.symbol}: history_days is 1 to 252")
        if any(not 2 <= k <= item.history_days for k in item.closed_days):
            raise ScenarioError(f"{source}: {item.symbol}: closed_days are 2 to history_days")
        if item.fx_bars and not any(
            u.sec_type == "CASH" and u.symbol == item.currency for u in scenario.underlyings
        ):
            raise ScenarioError(f"{source}: {item.symbol}: fx_bars needs a CASH {item.currency}")
        if not 0 <= item.close_before_benchmark < 1:
            raise ScenarioError(f"{source}: {item.symbol}: close_before_benchmark is 0 to < 1")
        if item.price_magnifier < 1 or item.portal_last_prefix not in ("", "C", "H"):
            raise ScenarioError(f"{source}: {item.symbol}: magnifier >= 1, last prefix C or H")
    if scenario.portal_values not in PORTAL_VALUES:
        raise ScenarioError(f"{source}: portal_values is one of {PORTAL_VALUES}")
    for account in scenario.accounts:
        base = scenario.currency_of(account)
        currencies = {item.currency for item in scenario.underlyings}
        currencies |= set(scenario.cash.get(account, {}))
        missing = currencies - {base} - set(scenario.exchange_rates.get(base, {}))
        if missing:
            raise ScenarioError(
                f"{source}: {account} (base {base}) needs exchange_rates.{base} for "
                + ", ".join(sorted(missing))
            )


def load(path: Path | None) -> Scenario:
    """The scenario in `path` (.toml or .json), a built-in one by name, or the default."""
    name = "default" if path is None else str(path)
    if name in BUILT_IN:
        text = resources.files("simulator.scenarios").joinpath(f"{name}.toml").read_text()
        return from_mapping(tomllib.loads(text), source=f"{name}.toml")
    assert path is not None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: {exc.strerror}") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    return from_mapping(raw, source=str(path))
