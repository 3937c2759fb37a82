"""The alerter's settings, read once from the environment at start, rules file included.

A bad rules file or a bad notification URL stops the alerter at start with one line naming the
variable, the rule (or the URL's position and scheme: never the URL) and the problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from alerter.delivery import Target, parse_targets
from alerter.errors import RulesError, TargetError
from alerter.rules import Rules, parse_rules, snapshot_figures
from database.settings import DatabaseSettings
from shared.errors import SettingsError
from shared.records import Mode
from shared.reset_window import ResetWindow
from shared.settings import EnvReader, PipelineCore, PipelinePaths

DEFAULT_RULES_FILE = Path("alerts.toml")


@dataclass(frozen=True)
class AlerterSettings:
    paths: PipelinePaths
    database: DatabaseSettings
    rules_file: Path
    rules: Rules
    targets: tuple[Target, ...]
    interval_s: float
    retry_delays_s: tuple[float, ...]
    give_up_s: float
    reset_windows: tuple[ResetWindow, ...]
    mode: Mode
    log_level: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> AlerterSettings:
        env = EnvReader(environ)
        core = PipelineCore.from_environ(environ)
        rules_file = env.path("BRIDGE_ALERTS_FILE", DEFAULT_RULES_FILE)
        try:
            targets = parse_targets(env.optional_text("BRIDGE_ALERT_URLS"))
        except TargetError as exc:
            raise SettingsError("BRIDGE_ALERT_URLS", str(exc)) from None
        return cls(
            paths=core.paths,
            database=DatabaseSettings.from_environ(
                environ, var_dir=core.paths.var_dir, reader=True
            ),
            rules_file=rules_file,
            rules=_rules(rules_file, required=env.is_set("BRIDGE_ALERTS_FILE")),
            targets=targets,
            interval_s=env.seconds("BRIDGE_ALERT_INTERVAL_S", 5.0, minimum=0.2, maximum=300),
            retry_delays_s=env.delays("BRIDGE_ALERT_RETRY_DELAYS_S", "5,30,120,600", maximum=86400),
            give_up_s=env.seconds("BRIDGE_ALERT_GIVE_UP_S", 86400, minimum=1, maximum=30 * 86400),
            reset_windows=env.reset_windows(),
            mode=core.mode,
            log_level=core.log_level,
        )


def _rules(path: Path, *, required: bool) -> Rules:
    """The rules of `path`; without the file, the feed-health defaults (an error if it was
    named explicitly)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise SettingsError("BRIDGE_ALERTS_FILE", f"{path} does not exist") from None
        return Rules()
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError("BRIDGE_ALERTS_FILE", f"{path}: cannot read it: {exc}") from None
    try:
        return parse_rules(text, figures=snapshot_figures())
    except RulesError as exc:
        raise SettingsError("BRIDGE_ALERTS_FILE", f"{path}: {exc}") from None
