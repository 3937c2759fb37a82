"""The scenario grid's cost (docs/scenarios.md): CPU per grid, the event loop's jitter while a
grid is computed in a worker thread, and the stored bytes per account-tick.

- CPU: one account of 1,000 American equity options on 10 underlyings (half calls, half puts,
  30 to 90 days; `BOOK_1000`) revalued by `collector.revaluation.revalue` (ours), by the same
  grid building a fresh QuantLib engine for every price (naive), and by closed-form Black-76
  for every option (the ceiling: no American engine can be cheaper than a closed form).
- Jitter: an event loop wakes every 50 ms (as the collector's ticker waits on its schedule) and
  records how late each wake-up is: with no grid running; while the grid runs in a worker
  process (as the collector runs it); on the loop itself a position at a time, yielding
  between positions; and in `asyncio.to_thread` (both held back by sharing the interpreter).
- Bytes: `scenario` lines of books of 2, 10 and 50 underlyings (3 options and a share position
  each) stored through the writer's statements into `scenario_pnl`, measured after VACUUM.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from bench import shapes
from bench.harness import fresh_database, percentile, scratch_postgres
from collector import revaluation
from collector.greeks import AccountContext, Holding, OptionGreeks, OptionTerms
from collector.revaluation import Market, Revaluation, account_lines, revalue, scenario_record
from database.schema import bootstrap
from database.sink import INSERT_SCENARIOS, STAGING  # the writer's own statements
from shared import records

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
MARKET = Market(rate=0.04)
_WAKE_S = 0.05


def book(options: int, underlyings: int = 10) -> tuple[list[Holding], AccountContext]:
    """`options` American equity options spread over `underlyings` symbols, and one share
    position per symbol; every beta known."""
    symbols = [f"S{index}" for index in range(underlyings)]
    holdings = []
    for index in range(options):
        symbol = symbols[index % underlyings]
        spot = 100.0 + 10 * (index % underlyings)
        holdings.append(Holding(
            1000 + index, symbol, "OPT", 1 + index % 5, 100.0, "USD",
            greeks=OptionGreeks(0.5, 0.02, -0.05, 0.1, spot, NOW),
            terms=OptionTerms("CP"[index % 2], spot * (0.8 + 0.4 * (index % 41) / 40),  # type: ignore[arg-type]
                              date(2027, 1, 6) + timedelta(days=index % 60), "american", "STK",
                              0.15 + 0.2 * (index % 7) / 6, 1.0),
        ))  # fmt: skip
    holdings += [
        Holding(index, symbol, "STK", 100, 1.0, "USD", price=100.0 + 10 * index)
        for index, symbol in enumerate(symbols)
    ]
    return holdings, AccountContext("USD", betas=dict.fromkeys(symbols, 1.1))


def _naive(holdings: list[Holding], context: AccountContext) -> None:
    """The same grid, a fresh QuantLib option, process and engine for every single price."""
    for holding in holdings:
        if holding.terms is None or holding.greeks is None:
            continue
        assert holding.greeks.underlying_price is not None
        assert holding.terms.implied_vol is not None
        years = (revaluation.expires_at(holding.terms) - NOW).total_seconds() / (365 * 86400)
        for moves in ([m for m in revaluation.MOVES_PCT], [1.1 * m for m in revaluation.MOVES_PCT]):
            for days in revaluation.DAYS_LATER:
                for shift in revaluation.VOL_SHIFTS_PTS:
                    for move in moves:
                        revaluation.option_value(
                            "european" if holding.terms.right == "C" else "american",
                            call=holding.terms.right == "C",
                            underlying=holding.greeks.underlying_price * (1 + move / 100),
                            strike=holding.terms.strike, years=years - days / 365,
                            vol=holding.terms.implied_vol + shift / 100, market=MARKET,
                        )  # fmt: skip


def _ceiling(holdings: list[Holding], context: AccountContext) -> None:
    """Every option closed form (Black-76): what no American engine can beat."""
    black = [replace(h, sec_type="FOP") if h.is_option else h for h in holdings]
    revalue(black, context, MARKET, NOW)


def _cpu_s(run: object, *args: object) -> float:
    start = time.process_time()
    run(*args)  # type: ignore[operator]
    return time.process_time() - start


async def _lateness_ms(seconds: float, work: asyncio.Future[Any] | None) -> list[float]:
    late = []
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while loop.time() < until and (work is None or not work.done()):
        due = loop.time() + _WAKE_S
        await asyncio.sleep(_WAKE_S)
        late.append((loop.time() - due) * 1000)
    return late


async def _stepped(holdings: list[Holding], context: AccountContext) -> None:
    revaluation = Revaluation(context, MARKET, NOW)
    for holding in holdings:
        revaluation.add(holding)
        await asyncio.sleep(0)
    revaluation.result()


async def _jitter(holdings: list[Holding], context: AccountContext) -> tuple[list[float], ...]:
    idle = await _lateness_ms(3.0, None)
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:

        def job(part: list[Holding]) -> functools.partial[list[bytes]]:
            return functools.partial(account_lines, [("DU1", part, context)], NOW, "SOCKET",
                                     MARKET, NOW)  # fmt: skip

        await loop.run_in_executor(pool, job(holdings[:5]))  # the worker started, warm
        process = asyncio.ensure_future(loop.run_in_executor(pool, job(holdings)))
        in_process = await _lateness_ms(600.0, process)
        await process
    work = asyncio.ensure_future(_stepped(holdings, context))
    stepped = await _lateness_ms(600.0, work)
    await work
    thread = asyncio.ensure_future(asyncio.to_thread(revalue, holdings, context, MARKET, NOW))
    threaded = await _lateness_ms(600.0, thread)
    await thread
    return idle, in_process, stepped, threaded


@dataclass
class ScenarioFigures:
    options: int
    ours_cpu_s: float
    naive_cpu_s: float
    ceiling_cpu_s: float
    idle_p99_ms: float
    process_ms: tuple[float, float, float]  # p50, p99, max
    stepped_ms: tuple[float, float, float]  # p50, p99, max
    threaded_ms: tuple[float, float, float]
    stored: dict[int, tuple[float, float]]  # underlyings -> (line bytes, stored bytes a row)


def _stored_bytes(books: tuple[int, ...], rows: int) -> dict[int, tuple[float, float]]:
    found = {}
    with scratch_postgres() as server:
        for underlyings in books:
            holdings, context = book(3 * underlyings, underlyings)
            scenarios = revalue(holdings, context, MARKET, NOW)
            url = fresh_database(server, f"bench_scenarios_{underlyings}")
            lines = [
                records.encode(scenario_record(
                    f"DU{index % 60:05d}", shapes.BASE + timedelta(seconds=60 * (index // 60)),
                    "SOCKET", context, scenarios,
                ))
                for index in range(rows)
            ]  # fmt: skip

            async def store(url: str = url, lines: list[bytes] = lines) -> None:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                    await bootstrap(conn)
                    await conn.execute(STAGING)
                    for start in range(0, len(lines), 160):
                        async with conn.transaction():
                            async with conn.cursor().copy(
                                "COPY bridge_staging (line) FROM STDIN"
                            ) as copy:
                                for line in lines[start : start + 160]:
                                    await copy.write_row((line.decode().rstrip("\n"),))
                            await conn.execute(INSERT_SCENARIOS)

            asyncio.run(store())
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE scenario_pnl")
                row = conn.execute(
                    "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits"
                    " WHERE inhparent = 'scenario_pnl'::regclass"
                ).fetchone()
            assert row is not None
            found[underlyings] = (sum(map(len, lines)) / rows, float(row[0]) / rows)
    return found


def measure(options: int = 1000, *, rows: int = 1200) -> ScenarioFigures:
    holdings, context = book(options)
    revalue(holdings[:20], context, MARKET, NOW)  # QuantLib's first call loads its tables
    ours = _cpu_s(revalue, holdings, context, MARKET, NOW)
    naive = _cpu_s(_naive, holdings, context)
    ceiling = _cpu_s(_ceiling, holdings, context)
    idle, in_process, stepped, threaded = asyncio.run(_jitter(holdings, context))
    return ScenarioFigures(
        options=options,
        ours_cpu_s=ours,
        naive_cpu_s=naive,
        ceiling_cpu_s=ceiling,
        idle_p99_ms=percentile(idle, 0.99),
        process_ms=(percentile(in_process, 0.5), percentile(in_process, 0.99), max(in_process)),
        stepped_ms=(percentile(stepped, 0.5), percentile(stepped, 0.99), max(stepped)),
        threaded_ms=(percentile(threaded, 0.5), percentile(threaded, 0.99), max(threaded)),
        stored=_stored_bytes(shapes.BOOKS, rows),
    )


def table(figures: ScenarioFigures) -> str:
    def core(cpu_s: float, every_s: float) -> str:
        return f"{100 * cpu_s / every_s:.1f} %"

    n = figures.options
    lines = [
        f"### Scenario grid: cost of one account of {n:,} American equity options on 10"
        " underlyings (`bench/scenarios.py`)",
        "",
        "| revaluation | CPU s a grid | µs an option-scenario | core at a grid / 5 s"
        " | core at a grid / 60 s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, cpu in (
        ("**ours** (QD+ engine kept per option and day; calls closed form)", figures.ours_cpu_s),
        ("naive (a fresh engine every price)", figures.naive_cpu_s),
        ("ceiling (every option closed form, Black-76)", figures.ceiling_cpu_s),
    ):
        lines.append(
            f"| {name} | {cpu:.2f} | {cpu / (n * 121) * 1e6:.1f} | {core(cpu, 5)}"
            f" | {core(cpu, 60)} |"
        )
    lines += [
        "",
        f"Event loop lateness (a wake-up every {_WAKE_S * 1000:.0f} ms), p50 / p99 / max:"
        f" idle p99 {figures.idle_p99_ms:.1f} ms;"
        " **ours**, the grid in a worker process: {:.1f} / {:.1f} / {:.1f} ms;"
        " on the loop a position at a time: {:.1f} / {:.1f} / {:.1f} ms;"
        " in a worker thread: {:.1f} / {:.1f} / {:.1f} ms.".format(
            *figures.process_ms, *figures.stepped_ms, *figures.threaded_ms
        ),
        "",
        "| book | line B | stored B a row | KB an account-hour at 60 s |",
        "|---|---:|---:|---:|",
    ]
    for underlyings, (line, stored) in figures.stored.items():
        lines.append(
            f"| {underlyings} underlyings | {line:,.0f} | {stored:,.0f}"
            f" | {stored * 60 / 1000:,.0f} |"
        )
    return "\n".join(lines)


def engines() -> str:
    """QuantLib's American engines on 60 puts (7 to 365 days, strikes 80 to 120, spot 80, 100
    and 120, vol 30 %, rate 4 %): µs a reprice (spot changed, engine kept) and the largest
    error against a 1,000 x 1,000 finite-difference grid."""
    import QuantLib as ql  # type: ignore[import-untyped]  # noqa: N813, PLC0415  # this table only

    today = ql.Date(7, 12, 2026)
    ql.Settings.instance().evaluationDate = today
    counter = ql.Actual365Fixed()
    spot = ql.SimpleQuote(100.0)

    def curve(rate: float) -> Any:
        return ql.YieldTermStructureHandle(ql.FlatForward(today, rate, counter))

    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(spot), curve(0.0), curve(0.04),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), 0.3, counter)),
    )  # fmt: skip
    made = {
        "Barone-Adesi-Whaley": lambda: ql.BaroneAdesiWhaleyApproximationEngine(process),
        "Bjerksund-Stensland": lambda: ql.BjerksundStenslandApproximationEngine(process),
        "**QD+ fixed point, fast scheme (ours)**": lambda: ql.QdFpAmericanEngine(
            process, ql.QdFpAmericanEngine.fastScheme()
        ),
        "QD+ fixed point, accurate scheme": lambda: ql.QdFpAmericanEngine(process),
        "binomial CRR, 200 steps": lambda: ql.BinomialCRRVanillaEngine(process, 200),
        "finite differences, 100 x 100": lambda: ql.FdBlackScholesVanillaEngine(process, 100, 100),
    }
    cases = [(days, strike) for days in (7, 30, 90, 365) for strike in (80, 90, 100, 110, 120)]

    def prices(engine: Any) -> tuple[list[float], float]:
        found, spent = [], 0.0
        for days, strike in cases:
            option = ql.VanillaOption(
                ql.PlainVanillaPayoff(ql.Option.Put, strike),
                ql.AmericanExercise(today, today + days),
            )
            option.setPricingEngine(engine())
            for price in (80.0, 120.0, 100.0):
                start = time.perf_counter()
                spot.setValue(price)
                found.append(option.NPV())
                spent += time.perf_counter() - start
        return found, spent / len(found) * 1e6

    reference, _ = prices(lambda: ql.FdBlackScholesVanillaEngine(process, 1000, 1000))
    lines = [
        "### Scenario grid: QuantLib's American engines (60 puts, `bench/scenarios.py`)",
        "",
        "| engine | µs a reprice | largest error (spot 80 to 120) |",
        "|---|---:|---:|",
    ]
    for name, engine in made.items():
        found, micros = prices(engine)
        error = max(abs(a - b) for a, b in zip(found, reference, strict=True))
        lines.append(f"| {name} | {micros:.1f} | {error:.4f} |")
    return "\n".join(lines)


def sensitivity(options: int = 200) -> str:
    """How much the rate and the dividend yield move the grid of `book(options)`: the worst
    loss, and the largest change of any scenario against the default (4 %, no dividends)."""
    holdings, context = book(options)
    base = revalue(holdings, context, MARKET, NOW).account
    assert base.grid is not None
    gross = sum(abs(value) for value in base.grid) / len(base.grid)
    lines = [
        f"### Scenario grid: what the rate and the dividend yield change ({options} American"
        " equity options and 10 share positions, `bench/scenarios.py`)",
        "",
        "| rate | dividend yield | worst loss | its scenario | largest change of a scenario"
        " | as % of the mean abs P&L |",
        "|---:|---:|---:|---|---:|---:|",
    ]
    for rate, dividends in ((0.0, 0.0), (0.02, 0.0), (0.04, 0.0), (0.06, 0.0), (0.04, 0.01),
                            (0.04, 0.02), (0.04, 0.04)):  # fmt: skip
        grid = revalue(holdings, context, Market(rate, dividends), NOW).account.grid
        assert grid is not None
        worst = min(range(len(grid)), key=grid.__getitem__)
        change = max(abs(a - b) for a, b in zip(grid, base.grid, strict=True))
        days, shift, move = revaluation.scenario(worst)
        lines.append(
            f"| {rate:.0%} | {dividends:.0%} | {grid[worst]:,.0f} | {move:+.0f} %, {shift:+.0f}"
            f" pts, +{days} d | {change:,.0f} | {100 * change / gross:.2f} % |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(measure(1000, rows=600)))
    print()
    print(sensitivity())
    print()
    print(engines())
    print(table(measure(1000, rows=600)))
