"""The alerts file: limits on stored figures and the feed-health rules, parsed and validated.

Pure: the TOML text and the list of known figures come in, frozen rules come out, or one
`RulesError` naming the rule and the problem. The figures are the numeric columns of
`portfolio_greeks`, read from the record that fills them (`shared.records.Snapshot`), so a column
added there (`net_beta_delta`, ...) can be limited without a change here.

    [[limit]]
    name = "theta floor"   # optional; by default "net_theta below -2000"
    figure = "net_theta"   # any numeric column of portfolio_greeks, or scenario_worst_pnl
                           # (the latest scenario grid's worst P&L; scenario_beta_worst_pnl),
                           # explain_share, explain_spearman or explain_worst_unexplained (the
                           # P&L explain's score of the account's day so far)
    account = "*"          # or one account id
    below = -2000          # and/or above = ...
    for_s = 30             # past the limit this long before it fires (default 0)
    margin = 100           # back inside by this much to resolve (default 5 % of the limit;
                           # required for a limit of 0)

    [health]               # each value may be changed, or set to false to turn the rule off
    stale_snapshot_s = 60
"""

from __future__ import annotations

import math
import tomllib
import types
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from alerter.errors import RulesError
from database.reads import DERIVED_FIGURES
from shared.records import Snapshot

ALL_ACCOUNTS: Final = "*"
# Without a margin, a value must come back inside by this share of the limit to resolve.
DEFAULT_MARGIN_SHARE: Final = 0.05
_LIMIT_KEYS: Final = frozenset({"name", "figure", "account", "below", "above", "for_s", "margin"})
# Number fields of the record that are not figures: its format (stored as `format_version`).
_NOT_FIGURES: Final = frozenset({"version"})


def snapshot_figures() -> tuple[str, ...]:
    """The numeric columns of `portfolio_greeks` (the number fields of the snapshot record),
    then the scenario grid's worst P&Ls and the P&L explain's day score as of each snapshot
    (database/reads.py `DERIVED_FIGURES`)."""
    hints = typing.get_type_hints(Snapshot)
    return (
        *(name for name, hint in hints.items() if _is_number(hint) and name not in _NOT_FIGURES),
        *DERIVED_FIGURES,
    )


def _is_number(hint: Any) -> bool:
    if hint in (int, float):
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        kinds = set(typing.get_args(hint)) - {type(None)}
        return bool(kinds) and kinds <= {int, float}
    return False


@dataclass(frozen=True)
class LimitRule:
    """`figure` of `account` (or of every account) must stay between `below` and `above`."""

    name: str
    figure: str
    account: str
    below: float | None
    above: float | None
    for_s: float
    margin_below: float
    margin_above: float

    def applies_to(self, account: str) -> bool:
        return self.account in (ALL_ACCOUNTS, account)


@dataclass(frozen=True)
class HealthRules:
    """The feed-health rules; None turns one off. Names are the keys of the `[health]` table."""

    stale_snapshot_s: float | None = 60.0
    gateway_disconnected_s: float | None = 60.0
    login_required_s: float | None = 0.0
    breaker_open_s: float | None = 60.0
    buffer_above_mb: float | None = 10.0
    dead_letter_quiet_s: float | None = 600.0
    heartbeat_silent_s: float | None = 30.0


# The alerts the feed-health rules raise, and the key of `[health]` that sets each one.
HEALTH_ALERTS: Final = {
    "heartbeat_silent": "heartbeat_silent_s",
    "gateway_disconnected": "gateway_disconnected_s",
    "login_required": "login_required_s",
    "stale_snapshot": "stale_snapshot_s",
    "breaker_open": "breaker_open_s",
    "buffer_large": "buffer_above_mb",
    "dead_letter": "dead_letter_quiet_s",
}


@dataclass(frozen=True)
class Rules:
    limits: tuple[LimitRule, ...] = ()
    health: HealthRules = HealthRules()

    def names(self) -> set[str]:
        """Every alert these rules can raise: the limits' names and the health rules that are on."""
        on = {name for name, key in HEALTH_ALERTS.items() if getattr(self.health, key) is not None}
        return {rule.name for rule in self.limits} | on

    @property
    def figures(self) -> tuple[str, ...]:
        """The figures some limit reads, each once, in the file's order."""
        return tuple(dict.fromkeys(rule.figure for rule in self.limits))


def parse_rules(text: str, *, figures: Collection[str]) -> Rules:
    """Rules from the alerts file's text; RulesError names the first bad rule and its problem."""
    try:
        body = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError("the file", f"not valid TOML: {exc}") from None
    unknown = set(body) - {"limit", "health"}
    if unknown:
        raise RulesError("the file", f"unknown table {sorted(unknown)[0]!r} (limit, health)")
    raw_limits = body.get("limit", [])
    if not isinstance(raw_limits, list):
        raise RulesError("[[limit]]", "write each limit as a [[limit]] table")
    limits: list[LimitRule] = []
    for number, raw in enumerate(raw_limits, start=1):
        rule = _limit(number, raw, figures)
        if rule.name in HEALTH_ALERTS:
            # Alerts are keyed by rule and subject: the two would share one episode.
            raise RulesError(_label(number, raw), f"{rule.name!r} is a health rule's name")
        if any(existing.name == rule.name for existing in limits):
            raise RulesError(_label(number, raw), f"a second rule named {rule.name!r}")
        limits.append(rule)
    return Rules(tuple(limits), _health(body.get("health", {})))


def _label(number: int, raw: Any) -> str:
    name = raw.get("name") or raw.get("figure") if isinstance(raw, dict) else None
    return f"[[limit]] #{number}" + (f" ({name})" if isinstance(name, str) else "")


def _limit(number: int, raw: Any, figures: Collection[str]) -> LimitRule:
    label = _label(number, raw)
    if not isinstance(raw, dict):
        raise RulesError(label, "not a table")
    unknown = set(raw) - _LIMIT_KEYS
    if unknown:
        raise RulesError(label, f"unknown key {sorted(unknown)[0]!r}")
    figure = raw.get("figure")
    if not isinstance(figure, str):
        raise RulesError(label, "figure is missing (one of the numbers of portfolio_greeks)")
    if figure not in figures:
        raise RulesError(
            label,
            f"figure {figure!r} is not a number stored in portfolio_greeks"
            f" (known: {', '.join(figures)})",
        )
    account = raw.get("account", ALL_ACCOUNTS)
    if not isinstance(account, str) or not account:
        raise RulesError(label, "account must be an account id or '*'")
    below, above = _number(label, raw, "below"), _number(label, raw, "above")
    if below is None and above is None:
        raise RulesError(label, "give below, above or both")
    if below is not None and above is not None and below >= above:
        raise RulesError(label, f"below ({below:g}) must be less than above ({above:g})")
    for_s = _number(label, raw, "for_s", minimum=0.0)
    margin = _number(label, raw, "margin", minimum=0.0)
    if margin is None and 0.0 in (below, above):
        # 5 % of 0 is 0: the alert would fire and resolve at every crossing of 0.
        raise RulesError(label, "a limit of 0 needs a margin (the default, 5 % of it, is 0)")
    margin_below = margin if margin is not None else abs(below or 0.0) * DEFAULT_MARGIN_SHARE
    margin_above = margin if margin is not None else abs(above or 0.0) * DEFAULT_MARGIN_SHARE
    if below is not None and above is not None and below + margin_below > above - margin_above:
        raise RulesError(label, "the margins overlap: the value could never be back inside")
    name = raw.get("name", _default_name(figure, account, below, above))
    if not isinstance(name, str) or not name.strip():
        raise RulesError(label, "name must be a non-empty string")
    return LimitRule(
        name=name.strip(),
        figure=figure,
        account=account,
        below=below,
        above=above,
        for_s=for_s or 0.0,
        margin_below=margin_below if below is not None else 0.0,
        margin_above=margin_above if above is not None else 0.0,
    )


def _default_name(figure: str, account: str, below: float | None, above: float | None) -> str:
    if below is not None and above is not None:
        bounds = f"outside {below:g}..{above:g}"
    elif below is not None:
        bounds = f"below {below:g}"
    else:
        bounds = f"above {above:g}"
    return f"{figure} {bounds}" + ("" if account == ALL_ACCOUNTS else f" ({account})")


def _number(
    label: str, raw: Mapping[str, Any], key: str, *, minimum: float | None = None
) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RulesError(label, f"{key} must be a number, not {value!r}")
    if minimum is not None and value < minimum:
        raise RulesError(label, f"{key} must be at least {minimum:g}, not {value!r}")
    return float(value)


def _health(raw: Any) -> HealthRules:
    if not isinstance(raw, dict):
        raise RulesError("[health]", "not a table")
    known = {name for name in HealthRules.__dataclass_fields__}
    values: dict[str, float | None] = {}
    for key, value in raw.items():
        if key not in known:
            raise RulesError(f"[health] {key}", f"unknown rule (known: {', '.join(sorted(known))})")
        if value is False:
            values[key] = None
            continue
        # nan compares false with everything (the rule would never fire), inf is never passed.
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise RulesError(f"[health] {key}", f"must be a number >= 0 or false, not {value!r}")
        values[key] = float(value)
    return HealthRules(**values)
