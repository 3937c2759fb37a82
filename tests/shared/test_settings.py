"""Settings readers: one clear error per bad value, secrets masked, .env under the environment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shared.errors import SettingsError
from shared.settings import (
    EnvReader,
    PipelineCore,
    PipelinePaths,
    Secret,
    mask_url,
    read_dotenv,
    with_dotenv,
)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda env: env.integer("N", 1, minimum=1, maximum=9), "N: 'x' is not a whole number"),
        (
            lambda env: env.seconds("N", 1.0, minimum=0, maximum=9),
            "N: 'x' is not a number of seconds",
        ),
        (lambda env: env.flag("N", default=True), "N: 'x' is not a boolean (true/false)"),
        (lambda env: env.choice("N", ("A", "B"), "A"), "N: 'x' is not one of A, B"),
    ],
)
def test_malformed_values_name_the_variable(
    call: Callable[[EnvReader], object], message: str
) -> None:
    """The error is one line: variable, the value as given, what was expected."""
    with pytest.raises(SettingsError) as raised:
        call(EnvReader({"N": "x"}))
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", 7), ("  ", 7), ("3", 3), ("9", 9)],
)
def test_blank_means_default(value: str, expected: int) -> None:
    """An empty variable is treated as unset rather than as an error."""
    assert EnvReader({"N": value}).integer("N", 7, minimum=1, maximum=9) == expected


def test_out_of_range_number_is_refused() -> None:
    """Bounds are checked, and the message gives them."""
    with pytest.raises(SettingsError, match=r"N: 0.01 is outside 0.1..60 seconds"):
        EnvReader({"N": "0.01"}).seconds("N", 1.0, minimum=0.1, maximum=60)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://bridge:s3cret@db:5432/x", "postgresql://bridge:***@db:5432/x"),
        ("postgresql://bridge@db/x", "postgresql://bridge@db/x"),
        (
            "postgresql://db/x?password=s3cret&sslmode=require",
            "postgresql://db/x?password=***&sslmode=require",
        ),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    """Passwords in the userinfo or the query never survive masking."""
    assert mask_url(url) == masked


def test_database_url_is_a_secret_and_a_wrong_scheme_is_refused_masked() -> None:
    """The URL hides in repr; a non-PostgreSQL URL is refused without echoing its password."""
    secret = EnvReader({"DATABASE_URL": "postgresql://u:s3cret@h/d"}).database_url("DATABASE_URL")
    assert isinstance(secret, Secret)
    assert "s3cret" not in repr(secret) + str(secret)
    with pytest.raises(SettingsError) as raised:
        EnvReader({"DATABASE_URL": "mysql://u:s3cret@h/d"}).database_url("DATABASE_URL")
    assert "s3cret" not in str(raised.value)
    assert str(raised.value).startswith("DATABASE_URL: ")


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    """`.env` supplies defaults; a variable set in the environment overrides it."""
    dotenv = tmp_path / ".env"
    dotenv.write_text('# local\nIB_API_MODE=PORTAL\nexport IB_PORT="4002"\n\nEMPTY=\n')
    assert read_dotenv(dotenv) == {"IB_API_MODE": "PORTAL", "IB_PORT": "4002", "EMPTY": ""}
    merged = with_dotenv({"IB_API_MODE": "SOCKET"}, dotenv)
    assert merged["IB_API_MODE"] == "SOCKET"
    assert merged["IB_PORT"] == "4002"


def test_malformed_dotenv_line_names_file_and_line(tmp_path: Path) -> None:
    """A broken `.env` is reported with its line number, not ignored."""
    dotenv = tmp_path / ".env"
    dotenv.write_text("A=1\nthis is not a setting\n")
    with pytest.raises(SettingsError, match=r"\.env:2: expected KEY=value"):
        read_dotenv(dotenv)


def test_pipeline_paths_follow_the_var_dir_but_the_buffer_defaults_to_home() -> None:
    """The seed's buffer default stays `~/.portfolio_bridge_buffer.jsonl` unless configured."""
    paths = PipelinePaths.from_environ({"BRIDGE_VAR_DIR": "/srv/bridge"})
    assert paths.spool_dir == Path("/srv/bridge/spool")
    assert paths.dead_letter_path == Path("/srv/bridge/deadletter.jsonl")
    assert paths.buffer_path == Path("~/.portfolio_bridge_buffer.jsonl").expanduser()


def test_local_profile_keeps_the_buffer_out_of_home() -> None:
    """Under the project's supervisord.conf the buffer lives under var/ unless configured."""
    paths = PipelinePaths.from_environ({"BRIDGE_PROFILE": "local", "BRIDGE_VAR_DIR": "/x/var"})
    assert paths.buffer_path == Path("/x/var/buffer.jsonl")
    configured = PipelinePaths.from_environ(
        {"BRIDGE_PROFILE": "local", "BRIDGE_BUFFER_PATH": "/data/buffer.jsonl"}
    )
    assert configured.buffer_path == Path("/data/buffer.jsonl")


def test_the_pipeline_core_reads_the_shared_preamble_once() -> None:
    """The writer, replayer and alerter read paths, log level, API mode and heartbeat interval
    from the same variables, with the same defaults."""
    core = PipelineCore.from_environ(
        {
            "BRIDGE_VAR_DIR": "/srv/bridge",
            "BRIDGE_LOG_LEVEL": "debug",
            "IB_API_MODE": "portal",
            "BRIDGE_STATUS_INTERVAL_S": "2.5",
        }
    )
    assert (core.paths.run_dir, core.log_level, core.mode, core.status_interval_s) == (
        Path("/srv/bridge/run"),
        "DEBUG",
        "PORTAL",
        2.5,
    )
    defaults = PipelineCore.from_environ({})
    assert (defaults.log_level, defaults.mode, defaults.status_interval_s) == (
        "INFO",
        "SOCKET",
        1.0,
    )
    assert (defaults.paths.writer_events_dir, defaults.paths.replayer_events_dir) == (
        Path("var/writer-events"),
        Path("var/replayer-events"),
    )


def test_a_bad_log_level_names_the_variable() -> None:
    """BRIDGE_LOG_LEVEL is checked the same way for every program."""
    with pytest.raises(SettingsError, match="BRIDGE_LOG_LEVEL: 'loud' is not one of DEBUG"):
        EnvReader({"BRIDGE_LOG_LEVEL": "loud"}).log_level()
