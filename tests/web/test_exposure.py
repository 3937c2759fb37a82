"""What the web program tells whom (issue 18, "Web"): each case failed on the code before it."""

from __future__ import annotations

import ast
import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from database.history import Retention, apply_partition_plan
from shared.health import Facts
from shared.heartbeat_files import Heartbeat
from testkit.web import serving
from tests.fixtures.heartbeats import publish_body
from tests.fixtures.proxy import TcpProxy, proxy_url
from tests.fixtures.web import (
    healthy_heartbeats,
    insert_events,
    insert_snapshots,
    prepare_schema,
    snapshot_row,
)
from web.metrics import KNOWN_EVENTS, BridgeCollector, Observation

TOKEN = "SENTINEL-token-8c41f0a2d9"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


async def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except json.JSONDecodeError:
            return response.status, text


def _stale_account_and_a_firing_alert(run_dir: Path) -> None:
    """A collector whose account DU7 has been silent for an hour, an alerter with one alert."""
    now = datetime.now(UTC)
    publish_body(
        run_dir,
        "collector",
        {
            "state": "running",
            "poll_interval_s": 5,
            "gateway": {"connected": True, "in_reset_window": False},
            "accounts": {"DU7": {"last_snapshot_ts": (now - timedelta(hours=1)).isoformat()}},
        },
        now=now,
        interval_s=5,
    )
    firing = {"rule": "theta", "account": "DU7", "figure": "net_theta", "value": -2500.0}
    publish_body(run_dir, "alerter", {"state": "running", "firing": [firing]}, now=now,
                   interval_s=5)  # fmt: skip


async def test_healthz_without_the_token_says_only_healthy_or_not_and_the_failing_checks(
    web_environ: dict[str, str], database_url: str
) -> None:
    """With a token configured, /healthz answers anyone with its status code, the overall
    status and the names of the failing checks: no account, alert, figure, path or error text.
    With the token it gives bridge-status's whole body."""
    await prepare_schema(database_url)
    environ = {**web_environ, "BRIDGE_WEB_TOKEN": TOKEN}
    _stale_account_and_a_firing_alert(Path(web_environ["BRIDGE_VAR_DIR"]) / "run")
    async with serving(environ) as (_server, base):
        code, public = await _get(f"{base}/healthz")
        full_code, full = await _get(f"{base}/healthz", BEARER)
    assert code == full_code == 503
    assert public == {
        "status": "unhealthy",
        "failing": ["accounts", "replayer", "writer"],
    }
    assert "DU7" not in json.dumps(public)
    assert "account DU7" in [finding["subject"] for finding in full["findings"]]
    assert full["facts"]["heartbeats"]["collector"]["accounts"]


async def test_a_host_that_does_not_name_this_server_is_refused(
    web_environ: dict[str, str], database_url: str
) -> None:
    """DNS rebinding: a hostile page whose name now points at 127.0.0.1 sends its own name in
    Host. Loopback names, IP literals (with or without the port) and the configured names are
    served; any other name gets 421, on every path."""
    await prepare_schema(database_url)
    environ = {**web_environ, "BRIDGE_WEB_ALLOWED_HOSTS": "bridge-host.example"}
    async with serving(environ) as (server, base):
        port = server.port
        codes = {
            host: (await _get(f"{base}/api/overview", {"Host": host}))[0]
            for host in [
                f"127.0.0.1:{port}",
                "127.0.0.1",
                f"localhost:{port}",
                "LOCALHOST",
                f"[::1]:{port}",
                f"bridge-host.example:{port}",
                f"evil.example:{port}",
                "evil.example",
                "localhost.evil.example",
                "127.0.0.1.nip.io",
                "[::1",
            ]
        }
        healthz_code, healthz = await _get(f"{base}/healthz", {"Host": "evil.example"})
    assert codes == {
        f"127.0.0.1:{port}": 200,
        "127.0.0.1": 200,
        f"localhost:{port}": 200,
        "LOCALHOST": 200,
        f"[::1]:{port}": 200,
        f"bridge-host.example:{port}": 200,
        f"evil.example:{port}": 421,
        "evil.example": 421,
        "localhost.evil.example": 421,
        "127.0.0.1.nip.io": 421,
        "[::1": 421,
    }
    assert healthz_code == 421
    assert "Host" in healthz


async def test_every_answer_carries_the_security_headers_and_json_is_never_stored(
    web_environ: dict[str, str], database_url: str
) -> None:
    """The page's policy allows scripts from this server only (plotly.js included), no framing,
    no sniffing; JSON, /metrics and refusals are not kept in any cache."""
    await prepare_schema(database_url)
    async with serving(web_environ) as (_server, base):
        answers = {}
        async with aiohttp.ClientSession() as session:
            for path in ["/", "/static/plotly.min.js", "/api/overview", "/healthz", "/metrics",
                         "/nowhere"]:  # fmt: skip
                async with session.get(base + path) as response:
                    answers[path] = response.headers
            async with session.get(base + "/", headers={"Host": "evil.example"}) as response:
                answers["421"] = response.headers
    for path, headers in answers.items():
        policy = dict(
            part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";")
        )
        assert policy["default-src"] == "'none'", path
        assert policy["script-src"] == "'self'", path  # no inline script, no eval
        assert policy["frame-ancestors"] == "'none'", path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["X-Frame-Options"] == "DENY", path
    for path in ["/api/overview", "/healthz", "/metrics", "421"]:
        assert answers[path]["Cache-Control"] == "no-store", path


def _cookie(headers: Any) -> dict[str, str]:
    """The session cookie's attributes from a Set-Cookie header, lowercased names."""
    (line,) = [value for value in headers.getall("Set-Cookie") if "bridge_web_session" in value]
    parts = [part.strip() for part in line.split(";")]
    attributes = {"value": parts[0].split("=", 1)[1]}
    for part in parts[1:]:
        name, _, value = part.partition("=")
        attributes[name.lower()] = value
    return attributes


async def test_the_session_cookie_is_strict_expires_and_logout_ends_it(
    web_environ: dict[str, str], database_url: str
) -> None:
    """HttpOnly, SameSite=Strict, Secure when the request came over TLS (a TLS proxy says so),
    a Max-Age the server enforces too; POST /logout clears it and the server refuses it after."""
    await prepare_schema(database_url)
    now = [datetime(2026, 3, 2, 15, 0, tzinfo=UTC)]
    environ = {**web_environ, "BRIDGE_WEB_TOKEN": TOKEN}
    async with serving(environ, clock=lambda: now[0]) as (_server, base):
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{base}/login", data={"token": TOKEN}, allow_redirects=False
            ) as response:
                plain = _cookie(response.headers)
            async with session.post(
                f"{base}/login",
                data={"token": TOKEN},
                headers={"X-Forwarded-Proto": "https"},
                allow_redirects=False,
            ) as response:
                behind_tls = _cookie(response.headers)
        cookie = {"Cookie": f"bridge_web_session={plain['value']}"}
        with_cookie, _ = await _get(f"{base}/api/overview", cookie)
        now[0] += timedelta(seconds=int(plain["max-age"]) + 1)
        expired, _ = await _get(f"{base}/api/overview", cookie)
        now[0] = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{base}/logout", headers=cookie, allow_redirects=False) as response,
        ):
            logout_code = response.status
            cleared = _cookie(response.headers)
        after_logout, _ = await _get(f"{base}/api/overview", cookie)
    assert "httponly" in plain
    assert plain["samesite"] == "Strict"
    assert "secure" not in plain
    assert "secure" in behind_tls
    assert 0 < int(plain["max-age"]) <= 86400
    assert TOKEN not in plain["value"]
    assert (with_cookie, expired) == (200, 401)
    assert logout_code == 303
    assert (cleared["value"], cleared["max-age"]) in {('""', "0"), ("", "0")}
    assert after_logout == 401


async def test_a_non_ascii_token_is_compared_as_bytes_never_a_500(
    web_environ: dict[str, str], database_url: str
) -> None:
    """A header, a form or the configured token with non-ASCII characters: compared as UTF-8
    bytes, 401 when wrong, in when right; never a 500 with a traceback."""
    await prepare_schema(database_url)
    ascii_token = {**web_environ, "BRIDGE_WEB_TOKEN": TOKEN}
    async with serving(ascii_token) as (_server, base):
        offered_umlaut, _ = await _get(f"{base}/api/overview", {"Authorization": "Bearer tökén"})
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{base}/login", data={"token": "tökén"}, allow_redirects=False
            ) as response,
        ):
            form_umlaut = response.status
    unicode_token = "Ω-tökén-0123456789-ünïcode"
    configured = {**web_environ, "BRIDGE_WEB_TOKEN": unicode_token}
    async with serving(configured) as (_server, base):
        right, _ = await _get(f"{base}/api/overview", {"Authorization": f"Bearer {unicode_token}"})
        wrong_ascii, _ = await _get(f"{base}/api/overview", BEARER)
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{base}/login", data={"token": unicode_token}, allow_redirects=False
            ) as response,
        ):
            form_right = response.status
            cookie = _cookie(response.headers)["value"]
        by_cookie, _ = await _get(
            f"{base}/api/overview", {"Cookie": f"bridge_web_session={cookie}"}
        )
    assert (offered_umlaut, form_umlaut) == (401, 401)
    assert (right, wrong_ascii) == (200, 401)
    assert (form_right, by_cookie) == (303, 200)


@pytest.mark.timeout(90)
async def test_healthz_answers_503_within_its_deadline_while_the_database_hangs(
    web_environ: dict[str, str], database_url: str, db_proxy: TcpProxy
) -> None:
    """The server stops answering with the default statement timeout (60 s): /healthz says 503
    within its 2 s, for the probe that meets the hang and for those queued behind it."""
    await prepare_schema(database_url)
    environ = {
        **web_environ,
        "DATABASE_URL": proxy_url(database_url, db_proxy),
        "BRIDGE_WEB_HEALTH_TIMEOUT_S": "2",
    }
    run_dir = Path(web_environ["BRIDGE_VAR_DIR"]) / "run"
    async with serving(environ) as (_server, base):
        healthy_heartbeats(run_dir)
        before, _ = await _get(f"{base}/healthz")
        db_proxy.deaf()
        started = time.monotonic()
        first, second = await asyncio.wait_for(
            asyncio.gather(_get(f"{base}/healthz"), _get(f"{base}/healthz")), 8
        )
        third = await asyncio.wait_for(_get(f"{base}/healthz"), 8)  # the hung one holds on
        elapsed_s = time.monotonic() - started
        db_proxy.healthy()
    assert before == 200
    assert [first[0], second[0], third[0]] == [503, 503, 503]
    for _code, body in (first, second, third):
        assert {
            "level": "unhealthy",
            "subject": "database",
            "message": "hangs: no answer within 2 s",
        } in body["findings"]
    assert elapsed_s < 8


async def test_the_spool_and_dead_letter_counts_are_read_at_most_once_a_second(
    web_environ: dict[str, str], database_url: str
) -> None:
    """Probes many a second do not each reread the spool and the whole dead-letter file: what
    was read is kept one second (the program's monotonic clock), then read again."""
    await prepare_schema(database_url)
    monotonic_s = [1000.0]
    dead_letters = Path(web_environ["BRIDGE_VAR_DIR"]) / "deadletter.jsonl"
    dead_letters.parent.mkdir(parents=True, exist_ok=True)
    dead_letters.write_text('{"reason": "x"}\n')
    async with serving(web_environ, monotonic=lambda: monotonic_s[0]) as (_server, base):
        _code, first = await _get(f"{base}/healthz")
        dead_letters.write_text('{"reason": "x"}\n{"reason": "y"}\n')
        monotonic_s[0] += 0.9
        _code, within = await _get(f"{base}/healthz")
        monotonic_s[0] += 0.1
        _code, after = await _get(f"{base}/healthz")
    counts = [body["facts"]["dead_letters"] for body in (first, within, after)]
    assert counts == [1, 1, 2]


async def _counter(base: str, name: str) -> dict[str, float]:
    _code, text = await _get(f"{base}/metrics")
    return {
        sample.labels.get("event", ""): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


async def test_events_total_counts_from_the_program_s_start_and_never_goes_down(
    web_environ: dict[str, str], database_url: str
) -> None:
    """A Prometheus counter: api_logs rows since the program started (by tick), so a day
    partition dropped past retention (as the replayer's maintenance does) takes nothing back,
    and a row older than the start is not counted."""
    await prepare_schema(database_url)
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    now = [start]
    insert_events(
        database_url,
        [
            (start - timedelta(hours=1), "warning", "gap", {}),  # before the program started
            (start + timedelta(minutes=1), "warning", "gap", {}),
            (start + timedelta(minutes=2), "warning", "gap", {}),
            (start + timedelta(minutes=2), "info", "connected", {}),
        ],
    )
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await apply_partition_plan(conn, Retention(), start)  # the day gets its partition
    async with serving(web_environ, clock=lambda: now[0]) as (_server, base):
        now[0] = start + timedelta(minutes=5)
        before = await _counter(base, "ibkr_bridge_events_total")
        later = start + timedelta(days=3)
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            report = await apply_partition_plan(conn, Retention(api_logs=timedelta(days=1)), later)
        now[0] = later
        after_drop = await _counter(base, "ibkr_bridge_events_total")
        insert_events(database_url, [(later, "warning", "gap", {})])
        after_new_gap = await _counter(base, "ibkr_bridge_events_total")
        created = await _counter(base, "ibkr_bridge_events_created")
    assert "api_logs_p20260302" in report.dropped
    assert before == {"gap": 2, "connected": 1}
    assert after_drop == before
    assert after_new_gap == {"gap": 3, "connected": 1}
    assert set(created.values()) == {start.timestamp()}


async def test_the_event_label_takes_only_known_names_and_other(
    web_environ: dict[str, str], database_url: str
) -> None:
    """The event name comes from the spool, so any text: a name the bridge does not emit is
    counted under `other`, and 50 of them make one series, not 50."""
    await prepare_schema(database_url)
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    made_up: list[tuple[datetime, str, str, dict[str, Any]]] = [
        (start, "warning", f"made_up_{k}", {}) for k in range(50)
    ]
    insert_events(database_url, [(start, "warning", "gap", {})] * 2 + made_up)
    async with serving(web_environ, clock=lambda: start) as (_server, base):
        counted = await _counter(base, "ibkr_bridge_events_total")
    assert counted == {"gap": 2, "other": 50}


def _emitted_event_names() -> set[str]:
    """Every event name the bridge's programs write as a literal: `emit(level, "name", ...)`
    and `event="name"`."""
    names: set[str] = set()
    root = Path(__file__).parents[2]
    for package in ("collector", "writer", "replayer", "alerter", "shared", "database"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                if (
                    isinstance(node.func, ast.Attribute)
                    and node.func.attr == "emit"
                    and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant)
                ):
                    names.add(str(node.args[1].value))
                names |= {
                    keyword.value.value
                    for keyword in node.keywords
                    if keyword.arg == "event"
                    and isinstance(keyword.value, ast.Constant)
                    and isinstance(keyword.value.value, str)
                }
    return names


def test_every_event_name_the_bridge_emits_is_a_known_label() -> None:
    """A new event name in the code must be added to KNOWN_EVENTS, or it is counted as other."""
    emitted = _emitted_event_names()
    assert "gap" in emitted  # the scan finds the emitters at all
    assert emitted - KNOWN_EVENTS == set()
    assert {"alert_fired", "alert_resolved", "ib_error", "farm_broken"} <= KNOWN_EVENTS
    assert "other" not in KNOWN_EVENTS


async def test_accounts_without_a_recent_snapshot_leave_metrics(
    web_environ: dict[str, str], database_url: str
) -> None:
    """A closed account's newest row stays for the 90-day retention; its gauges leave
    /metrics once it has had no snapshot for the window (7 days by default)."""
    await prepare_schema(database_url)
    now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    insert_snapshots(
        database_url,
        [
            snapshot_row("DU1", now - timedelta(seconds=10), net_dollar_delta=1.0),
            snapshot_row("DU2", now - timedelta(days=6), net_dollar_delta=2.0),
            snapshot_row("DU9", now - timedelta(days=8), net_dollar_delta=9.0),
        ],
    )
    async with serving(web_environ, clock=lambda: now) as (_server, base):
        _code, text = await _get(f"{base}/metrics")
        _code, overview = await _get(f"{base}/api/overview")
    accounts = {
        (sample.name, sample.labels["account"])
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if "account" in sample.labels
    }
    assert {account for _name, account in accounts} == {"DU1", "DU2"}
    assert ("ibkr_bridge_snapshot_age_seconds", "DU2") in accounts
    assert [row["account"] for row in overview["accounts"]] == ["DU1", "DU2", "DU9"]


@pytest.mark.parametrize(
    ("age_s", "state", "connected"),
    [(2.0, "running", 1.0), (25.0, "running", 0.0), (2.0, "stopped", 0.0)],
    ids=["running", "silent", "stopped"],
)
def test_gateway_connected_is_bridge_status_s_judgement(
    age_s: float, state: str, connected: float
) -> None:
    """The collector's last heartbeat said connected: 1 while it runs, 0 once it stopped or is
    silent (25 s at the 5 s poll, silent after 3 x 5 s + 5 s = 20 s): what it said is not news."""
    now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    body = {
        "heartbeat": (now - timedelta(seconds=age_s)).isoformat(),
        "interval_s": 5,
        "state": state,
        "gateway": {"connected": True, "in_reset_window": False},
    }
    facts = Facts(
        heartbeats={"collector": Heartbeat.from_json(body)},
        spool_lag_records=0,
        spool_lag_s=None,
        buffer_bytes=0,
        oldest_buffered_ts=None,
        dead_letters=0,
    )
    observation = Observation(now, facts, [], None, [], None)
    (gauge,) = [
        family for family in BridgeCollector(observation).collect()
        if family.name == "ibkr_bridge_gateway_connected"
    ]  # fmt: skip
    assert [sample.value for sample in gauge.samples] == [connected]
