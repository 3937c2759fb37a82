"""The alerts file: the form other tools write, the example, and one clear line per bad rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerter.errors import RulesError
from alerter.rules import HealthRules, LimitRule, parse_rules, snapshot_figures

ROOT = Path(__file__).resolve().parents[2]
FIGURES = snapshot_figures()


def test_the_figures_are_the_numeric_columns_of_portfolio_greeks() -> None:
    """A limit may name any number stored per snapshot, and nothing that is not a number (ids,
    names, JSON)."""
    assert {
        "net_theta", "net_vega", "net_dollar_delta", "net_dollar_gamma", "net_beta_delta",
        "net_liquidation", "unrealized_pnl", "daily_pnl", "option_count", "stalest_greek_age_s",
    } <= set(FIGURES)  # fmt: skip
    assert not {"account", "ts", "mode", "underlyings", "id", "currency", "completeness"} & set(
        FIGURES
    )
    assert "version" not in FIGURES  # the record's format, stored as format_version


def test_the_form_other_tools_write() -> None:
    """The rules file as the README documents it parses into the limits and health rules it says."""
    rules = parse_rules(
        """
        [[limit]]
        figure = "net_theta"   # any stored figure
        account = "*"          # or one account id
        below = -2000          # and/or above = ...
        for_s = 30
        """,
        figures=FIGURES,
    )
    # The default margin is 5 % of the limit: 2000 * 0.05 = 100.
    assert rules.limits == (
        LimitRule("net_theta below -2000", "net_theta", "*", -2000.0, None, 30.0, 100.0, 0.0),
    )
    assert rules.health == HealthRules()


def test_a_figure_added_to_the_table_can_be_limited() -> None:
    """`net_beta_delta` is accepted as soon as it is one of the table's numbers."""
    text = '[[limit]]\nfigure = "net_beta_delta"\nbelow = -500\nabove = 500\n'
    with pytest.raises(RulesError, match="net_beta_delta"):
        parse_rules(text, figures=("net_delta",))
    (rule,) = parse_rules(text, figures=("net_delta", "net_beta_delta")).limits
    assert (rule.name, rule.margin_below, rule.margin_above) == (
        "net_beta_delta outside -500..500", 25.0, 25.0,  # 500 * 0.05 = 25
    )  # fmt: skip


def test_the_explain_score_is_limited_like_any_figure() -> None:
    """The day's explained share, Spearman correlation and worst interval are figures: a floor
    of 0.8 on the correlation (FRTB's green line) resolves back at 0.84 (5 % of 0.8 is 0.04);
    the worst interval's cap of 500 at 475."""
    assert {"explain_share", "explain_spearman", "explain_worst_unexplained"} <= set(FIGURES)
    rules = parse_rules(
        '[[limit]]\nfigure = "explain_spearman"\nbelow = 0.8\n'
        '[[limit]]\nfigure = "explain_worst_unexplained"\naccount = "DU0001"\nabove = 500\n',
        figures=FIGURES,
    )
    spearman, worst = rules.limits
    assert (spearman.name, spearman.account, spearman.below, spearman.above) == (
        "explain_spearman below 0.8", "*", 0.8, None,
    )  # fmt: skip
    assert spearman.margin_below == pytest.approx(0.04)
    assert worst == LimitRule(
        "explain_worst_unexplained above 500 (DU0001)", "explain_worst_unexplained", "DU0001",
        None, 500.0, 0.0, 0.0, 25.0,
    )  # fmt: skip
    assert rules.figures == ("explain_spearman", "explain_worst_unexplained")


def test_the_example_file_is_valid() -> None:
    """alerts.example.toml parses, its three limits named as the README shows them, the health rules
    at their defaults."""
    rules = parse_rules((ROOT / "alerts.example.toml").read_text(), figures=FIGURES)
    assert [rule.name for rule in rules.limits] == [
        "theta floor", "net_vega above 50000", "net_beta_delta outside -500..500 (DU1234567)",
    ]  # fmt: skip
    assert rules.health == HealthRules()


def test_a_limit_of_0_with_a_margin_resolves_only_back_inside_by_it() -> None:
    """`daily_pnl below = 0` with margin 50: resolves at 50, not at the next crossing of 0."""
    (rule,) = parse_rules(
        '[[limit]]\nfigure = "daily_pnl"\nbelow = 0\nmargin = 50\n', figures=FIGURES
    ).limits
    assert (rule.below, rule.margin_below) == (0.0, 50.0)


def test_health_rules_change_or_turn_off() -> None:
    """A `[health]` key changes its rule's limit, and `false` turns the rule off."""
    rules = parse_rules("[health]\nbuffer_above_mb = 50\nlogin_required_s = false\n", figures=())
    assert (rules.health.buffer_above_mb, rules.health.login_required_s) == (50.0, None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[limit]]\nfigure = "net_thta"\nbelow = 1\n',
         "[[limit]] #1 (net_thta): figure 'net_thta' is not a number stored in portfolio_greeks"),
        ('[[limit]]\nfigure = "net_delta"\nbelow = 1\n[[limit]]\nname = "x"\nfigure = "account"\n'
         "above = 1\n",
         "[[limit]] #2 (x): figure 'account' is not a number"),
        ('[[limit]]\nfigure = "net_delta"\n',
         "[[limit]] #1 (net_delta): give below, above or both"),
        ('[[limit]]\nfigure = "net_delta"\nbelow = 5\nabove = 1\n',
         "[[limit]] #1 (net_delta): below (5) must be less than above (1)"),
        ('[[limit]]\nfigure = "net_delta"\nbelow = -10\nabove = 10\nmargin = 15\n',
         "[[limit]] #1 (net_delta): the margins overlap"),
        ('[[limit]]\nfigure = "net_delta"\nbelow = "low"\n',
         "[[limit]] #1 (net_delta): below must be a number, not 'low'"),
        ('[[limit]]\nfigure = "net_delta"\nabove = 1\nfor_s = -1\n',
         "[[limit]] #1 (net_delta): for_s must be at least 0"),
        ('[[limit]]\nfigure = "net_delta"\nabove = 1\nwhen = 3\n',
         "[[limit]] #1 (net_delta): unknown key 'when'"),
        ('[[limit]]\nfigure = "net_delta"\nabove = 1\n[[limit]]\nfigure = "net_delta"\nabove = 1\n',
         "[[limit]] #2 (net_delta): a second rule named 'net_delta above 1'"),
        ('[[limit]]\nfigure = "daily_pnl"\nbelow = 0\n',
         "[[limit]] #1 (daily_pnl): a limit of 0 needs a margin"),
        ('[[limit]]\nfigure = "daily_pnl"\nbelow = -500\nabove = 0\n',
         "[[limit]] #1 (daily_pnl): a limit of 0 needs a margin"),
        ('[[limit]]\nname = "stale_snapshot"\nfigure = "net_delta"\nabove = 1\n',
         "[[limit]] #1 (stale_snapshot): 'stale_snapshot' is a health rule's name"),
        ("[health]\nstale_snapshot_s = nan\n", "[health] stale_snapshot_s: must be a number"),
        ("[health]\nbuffer_above_mb = inf\n", "[health] buffer_above_mb: must be a number"),
        ("[health]\nbreaker_s = 5\n", "[health] breaker_s: unknown rule"),
        ("[health]\nbuffer_above_mb = true\n", "[health] buffer_above_mb: must be a number"),
        ("[limits]\n", "the file: unknown table 'limits'"),
        ("[[limit]\n", "the file: not valid TOML"),
    ],
)  # fmt: skip
def test_a_bad_rule_is_named_with_its_problem(text: str, message: str) -> None:
    """Every malformed rule is refused in one line that names the rule (its position and name) and
    what is wrong with it."""
    with pytest.raises(RulesError) as caught:
        parse_rules(text, figures=FIGURES)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_the_alerts_a_file_can_raise() -> None:
    """A limit's name and the health rules that are on: an alert saved under any other name
    (a rule deleted, renamed or turned off) is forgotten at the next start."""
    rules = parse_rules(
        '[[limit]]\nname = "cap"\nfigure = "net_delta"\nabove = 1\n'
        "[health]\nbuffer_above_mb = false\ndead_letter_quiet_s = false\n",
        figures=FIGURES,
    )
    assert rules.names() == {
        "cap", "heartbeat_silent", "gateway_disconnected", "login_required", "stale_snapshot",
        "breaker_open",
    }  # fmt: skip
