"""`python -m bench` (`make bench`): run the benchmarks, print them, rewrite docs/benchmarks.md.

`python -m bench --quick` (`make bench-quick`, under 3 minutes) runs the headline ratios at
smaller sizes, to check a change before it lands: a row's cost by book, replay against its
bounds, latency, the writer at one rate, the chart. Only a full run is published.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    analyze,
    budget,
    capacity,
    collector,
    expiry_legs,
    explain_rollups,
    explain_score,
    history,
    lean,
    packed_floor,
    pipeline,
    recompute,
    row_floor,
    scenarios,
    server_time,
    shapes,
    typed_staging,
    web,
)
from bench.harness import machine
from bench.speed_probe import Speed

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, do not publish")
    parser.add_argument(
        "--only",
        help="comma-separated benchmarks to run (lean, replay, latency, capacity, history,"
        " collector, jitter, scenarios, web, expiry, recompute, budget, explain-rollups,"
        " explain-score, typed, floor, analyze);"
        " their sections replace the same sections of docs/benchmarks.md, the rest stays",
    )
    args = parser.parse_args()
    chosen = set(args.only.split(",")) if args.only else set(_BENCHMARKS)
    unknown = chosen - set(_BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    sections = []
    for name, run in _BENCHMARKS.items():
        if name in chosen:
            sections += run(args.quick)
    report = "\n\n".join(sections)
    print(report)
    if args.quick:
        return
    if args.only:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        dated = [
            f"{section}\n\n_Measured {stamp} with `python -m bench --only {args.only}`._"
            for section in sections
        ]
        DOCS.write_text(_splice(DOCS.read_text(), dated))
    else:
        DOCS.write_text(_document(report))
    print(f"\nwritten to {DOCS}")


def _lean_sections(quick: bool) -> list[str]:
    return [lean.table(lean.measure(2_000 if quick else 20_000))]


def _replay_sections(quick: bool) -> list[str]:
    rows, naive_rows = (30_000, 1_000) if quick else (1_000_000, 20_000)
    replay = pipeline.replay(rows, naive_rows)
    if quick:
        return [_replay_table(replay)]
    recoveries = pipeline.recovery({"1 hour": 43_200, "24 hours": 1_036_800})
    return [_replay_table(replay), _recovery_table(recoveries, replay.ours_rows_s)]


def _latency_sections(quick: bool) -> list[str]:
    return [_latency_table(pipeline.latency(200 if quick else 2_000, spacing_s=0.01))]


def _capacity_sections(quick: bool) -> list[str]:
    if quick:
        return [_capacity_table(capacity.capacity([8_000], 3.0), None)]
    rates = [1_000, 2_000, 3_000, 4_000, 6_000, 8_000, 12_000, 16_000]
    ours = capacity.capacity(rates, 10.0)
    one_connection = capacity.capacity(rates, 10.0, {"BRIDGE_WRITER_CONNECTIONS": "1"})
    # The same book in format 2, the line before lean snapshots, measured in the same run.
    before = capacity.capacity(rates, 10.0, version=2)
    by_book = [ours, before] + [
        capacity.capacity(rates, 10.0, underlyings=book)
        for book in shapes.BOOKS
        if book != shapes.BOOK
    ]
    lines = 32_000
    return [
        server_time.table(server_time.server_time(lines), lines),
        _capacity_table(ours, one_connection),
        _capacity_by_book_table(by_book),
    ]


# The rates of the minute-long runs: the one the README plans on, and the one `capacity` holds
# in 10-s windows.
_SUSTAINED_RATES = (6_000, 8_000)


def _sustained_sections(quick: bool) -> list[str]:
    """Each rate for a minute at a time (10 s in quick), alternately, three times each (once in
    quick): whether a rate held in a 10-s window holds over a minute on this machine."""
    runs, seconds = (1, 10.0) if quick else (3, 60.0)
    figures = [capacity.capacity([rate], seconds) for _ in range(runs) for rate in _SUSTAINED_RATES]
    return [_sustained_table(figures, seconds)]


def _history_sections(quick: bool) -> list[str]:
    return [_history_tables(history.measure(4, 1.0) if quick else history.measure(60, 5.0))]


def _collector_sections(quick: bool) -> list[str]:
    cases = [
        (10, "stream"),
        (100, "stream"),
        (1000, "stream"),
        (1000, "snapshot"),
        (collector.TRADER, "stream"),
    ]
    if quick:
        cases = [(10, "stream"), (100, "snapshot")]
    return [_collector_table(collector.collector_cost(cases, 15.0 if quick else 60.0))]


def _jitter_sections(quick: bool) -> list[str]:
    options = 1000
    return [
        collector.jitter_table(
            collector.tick_jitter(collector.jitter_cases(quick), options), options
        )
    ]


def _expiry_sections(quick: bool) -> list[str]:
    ticks = 200 if quick else 2_000
    return [expiry_legs.table(expiry_legs.measure(ticks), ticks)]


def _budget_sections(quick: bool) -> list[str]:
    rows = 200 if quick else 2_000
    return [budget.table(budget.measure(rows), rows)]


def _scenario_sections(quick: bool) -> list[str]:
    figures = scenarios.measure(200 if quick else 1000, rows=120 if quick else 1200)
    return [
        scenarios.table(figures),
        scenarios.sensitivity(50 if quick else 200),
        scenarios.engines(),
    ]


def _recompute_sections(quick: bool) -> list[str]:
    ticks = 5 if quick else 20
    return [recompute.table(recompute.measure(ticks), ticks)]


def _explain_score_sections(quick: bool) -> list[str]:
    return [explain_score.table(explain_score.measure(4 if quick else 16))]


def _explain_rollup_sections(quick: bool) -> list[str]:
    return [explain_rollups.table(explain_rollups.measure(4 if quick else 20))]


def _web_sections(quick: bool) -> list[str]:
    return [web.table(web.chart(days=0.5 if quick else web.DAYS))]


def _typed_sections(quick: bool) -> list[str]:
    lines, replay = (1_600, 10_000) if quick else (16_000, 60_000)
    books = (shapes.BOOK,) if quick else shapes.BOOKS
    return [typed_staging.table([typed_staging.measure(lines, replay, book) for book in books])]


def _analyze_sections(quick: bool) -> list[str]:
    rows = 4_000 if quick else 40_000
    books = (shapes.BOOK,) if quick else shapes.BOOKS
    return [analyze.table([analyze.measure(rows, book) for book in books])]


def _floor_sections(quick: bool) -> list[str]:
    rows = 2_000 if quick else 20_000
    packed = {book: packed_floor.measure(rows // 5, book) for book in shapes.BOOKS}
    packing = {book: packed_floor.encode_us(book) for book in shapes.BOOKS}
    return [row_floor.table(row_floor.measure(rows)), packed_floor.table(packed, packing)]


_BENCHMARKS: dict[str, Callable[[bool], list[str]]] = {
    "lean": _lean_sections,
    "replay": _replay_sections,
    "latency": _latency_sections,
    "capacity": _capacity_sections,
    "sustained": _sustained_sections,
    "history": _history_sections,
    "collector": _collector_sections,
    "jitter": _jitter_sections,
    "scenarios": _scenario_sections,
    "web": _web_sections,
    "expiry": _expiry_sections,
    "recompute": _recompute_sections,
    "budget": _budget_sections,
    "explain-rollups": _explain_rollup_sections,
    "explain-score": _explain_score_sections,
    "typed": _typed_sections,
    "floor": _floor_sections,
    "analyze": _analyze_sections,
}


def _splice(document: str, sections: list[str]) -> str:
    """Replace each section of `document` whose title (up to its parenthesis) matches; a new
    section is added at the end. Sections start with '### '."""
    head, *parts = document.split("\n### ")
    blocks = ["### " + part.rstrip("\n") for part in parts]

    def title(block: str) -> str:
        return block.splitlines()[0].split("(")[0].strip()

    for section in sections:
        matches = [index for index, block in enumerate(blocks) if title(block) == title(section)]
        if matches:
            blocks[matches[0]] = section
        else:
            blocks.append(section)
    return head.rstrip("\n") + "\n\n" + "\n\n".join(blocks) + "\n"


def _replay_table(figures: pipeline.ReplayFigures) -> str:
    ceiling = figures.ceiling_rows_s
    return "\n".join(
        [
            f"### Replay throughput ({figures.rows:,} snapshots, table with its indexes)",
            "",
            "| path | rows/s | x ceiling | x naive |",
            "|---|---:|---:|---:|",
            f"| ceiling: binary COPY of parsed rows, two at once | {ceiling:,.0f} | 1.00 |"
            f" {ceiling / figures.naive_rows_s:,.1f} |",
            f"| **ours: replayer from the JSONL buffer** | {figures.ours_rows_s:,.0f} |"
            f" {figures.ours_rows_s / ceiling:.2f} |"
            f" {figures.ours_rows_s / figures.naive_rows_s:,.1f} |",
            f"| naive: INSERT + COMMIT per row ({figures.naive_rows:,}-row sample) |"
            f" {figures.naive_rows_s:,.0f} | {figures.naive_rows_s / ceiling:.3f} | 1.0 |",
            "",
            "Goals: ours ≥ 0.6 x ceiling, ≥ 20 x naive. Rows shaped like the collector's for a"
            f" book of {shapes.BOOK} underlyings per account (format 3, figures as the collector"
            " states them, all known; `bench/shapes.py`), 60 accounts, into the partitioned"
            " table with its key, BRIN and rollup trigger. Ours and the ceiling both use two"
            " connections.",
        ]
    )


def _recovery_table(figures: list[pipeline.RecoveryFigures], rows_per_s: float) -> str:
    lines = [
        "### Recovery after an outage (the replayer drains the backlog)",
        "",
        "| outage | rows buffered | drain time | x the outage's length |",
        "|---|---:|---:|---:|",
    ]
    lengths_s = {"1 hour": 3600.0, "24 hours": 86_400.0}
    for figure in figures:
        length = lengths_s.get(figure.outage, float("nan"))
        lines.append(
            f"| {figure.outage} | {figure.rows:,} | {figure.seconds:.1f} s |"
            f" {figure.seconds / length:.5f} |"
        )
    lines += [
        "",
        "60 accounts, a row each every 5 s. The drain starts at the first replay period after the"
        f" database returns (60 s by default). At the measured {rows_per_s:,.0f} rows/s a day's"
        " backlog is stored in seconds; live rows flow meanwhile (the writer stores them"
        " directly).",
    ]
    return "\n".join(lines)


def _latency_table(figures: pipeline.LatencyFigures) -> str:
    return "\n".join(
        [
            f"### Spool-to-database latency ({figures.samples:,} records, database up)",
            "",
            "| p50 | p99 | max | goal p99 |",
            "|---:|---:|---:|---:|",
            f"| {figures.p50_ms:.1f} ms | {figures.p99_ms:.1f} ms | {figures.max_ms:.1f} ms"
            " | < 100 ms |",
            "",
            "From the append to the spool (the record's `ts`) to the start of the transaction"
            " that stored it (`stored_at`); a real writer process polling every 20 ms.",
        ]
    )


def _sustained_table(figures: list[capacity.CapacityFigures], seconds: float) -> str:
    lines = [
        f"### The writer over longer windows ({seconds:.0f} s a run, a book of {shapes.BOOK}"
        " underlyings)",
        "",
        "| rows/s | run | p50 | p99 | max | goal p99 ≤ 100 ms | machine speed: median, slowest |",
        "|---:|---:|---:|---:|---:|---|---:|",
    ]
    held: dict[int, list[bool]] = {}
    for figure in figures:
        for point in figure.points:
            runs = held.setdefault(point.rows_s, [])
            runs.append(point.holds)
            lines.append(
                f"| {point.rows_s:,} | {len(runs)} | {point.p50_ms:.1f} ms | {point.p99_ms:.1f} ms"
                f" | {point.max_ms:.1f} ms | {'yes' if point.holds else 'no'} |"
                f" {_speed(point.speed)} |"
            )
    summary = "; ".join(
        f"{rate:,} rows/s in {sum(runs)} of {len(runs)}" for rate, runs in held.items()
    )
    lines += [
        "",
        f"**Held p99 ≤ 100 ms: {summary}.**",
        "",
        'The writer and load of "The writer\'s capacity" above, one rate a run, the rates'
        " alternating, each run a fresh writer and database. A p99 over a longer window holds"
        " only if the writer keeps up through the slow stretches the window holds: at 8,000 rows/s"
        " it is near what one writer does here (busy 98 % of the time, docs/scaling.md), and this"
        " shared machine runs at half its speed for seconds at a time (the speed columns).",
    ]
    return "\n".join(lines)


def _capacity_table(
    figures: capacity.CapacityFigures, one_connection: capacity.CapacityFigures | None
) -> str:
    lines = [
        f"### The writer's capacity ({figures.seconds_per_rate:.0f} s per rate, a book of"
        f" {figures.underlyings} underlyings, append to visible in another session)",
        "",
        "| rows/s | accounts at 5 s | p50 | p99 | max | goal p99 ≤ 100 ms |"
        " machine speed: median, slowest | p99 over one connection |",
        "|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    single = {point.rows_s: point for point in (one_connection.points if one_connection else [])}
    for point in figures.points:
        other = single.get(point.rows_s)
        lines.append(
            f"| {point.rows_s:,} | {point.accounts:,} | {point.p50_ms:.1f} ms |"
            f" {point.p99_ms:.1f} ms | {point.max_ms:.1f} ms | {'yes' if point.holds else 'no'} |"
            f" {_speed(point.speed)} | {'—' if other is None else f'{other.p99_ms:.1f} ms'} |"
        )

    def verdict(best: capacity.RatePoint | None) -> str:
        if best is None:
            return "no rate held p99 ≤ 100 ms"
        return f"{best.rows_s:,} rows/s, {best.accounts:,} accounts"

    load = ", ".join(f"{value:.2f}" for value in figures.load_average)
    lines += [
        "",
        f"**Highest rate holding p99 ≤ 100 ms, {figures.underlyings} underlyings per account:"
        f" {verdict(figures.best)}** at one snapshot each every 5 s"
        + (
            "; over one connection (`BRIDGE_WRITER_CONNECTIONS=1`):"
            f" {verdict(one_connection.best)}."
            if one_connection
            else "."
        ),
        "",
        "One real writer process tails a spool that a load generator appends to at a fixed rate"
        " (an append every 10 ms; format-3 rows shaped like the collector's, `bench/shapes.py`)."
        " The last line of each append is a probe; another session polls for it every 2 "
        "ms, so the latency runs from the start of the append to the moment another connection "
        "can read the rows (commit included; `stored_at` is not used). The generator, the "
        "observer, the writer and PostgreSQL share the machine's cores; the table grows through"
        " the run. A curve stops after two rates in a row miss the goal (—: not measured)."
        " Machine speed: a process of its own times a fixed piece of work every 0.25 s"
        " (`bench/speed_probe.py`); the rate's median and slowest sample against the fastest of"
        " the run (100 %: the machine at its best; the same work took up to twice as long on"
        " this shared machine with nothing else running: docs/scaling.md)."
        f" Load average at the end: {load}.",
    ]
    return "\n".join(lines)


def _speed(speed: Speed | None) -> str:
    return "—" if speed is None else f"{speed.median:.0%}, {speed.slowest:.0%}"


def _capacity_by_book_table(curves: list[capacity.CapacityFigures]) -> str:
    rates = sorted({point.rows_s for curve in curves for point in curve.points})
    lines = [
        "### The writer's capacity by book (p99 append to visible, 10 s per rate)",
        "",
        "| book | format | "
        + " | ".join(f"{rate:,} rows/s" for rate in rates)
        + " | highest rate holding p99 ≤ 100 ms |",
        "|---|---|" + "---:|" * (len(rates) + 1),
    ]
    for curve in sorted(curves, key=lambda c: (c.underlyings, c.version)):
        by_rate = {point.rows_s: point for point in curve.points}
        cells = " | ".join(
            "—" if rate not in by_rate else _p99_and_speed(by_rate[rate]) for rate in rates
        )
        best = curve.best
        verdict = "none" if best is None else f"{best.rows_s:,} ({best.accounts:,} accounts)"
        lines.append(f"| {curve.underlyings} underlyings | {curve.version} | {cells} | {verdict} |")
    lines += [
        "",
        "The same writer and load as above, one curve per book (underlyings per account, every"
        " figure known) and format (2: the line before lean snapshots, measured in the same"
        " run); a curve stops after two rates in a row miss the goal (—). In brackets, the"
        " machine's median speed while the rate ran, as above.",
    ]
    return "\n".join(lines)


def _p99_and_speed(point: capacity.RatePoint) -> str:
    speed = "" if point.speed is None else f" ({point.speed.median:.0%})"
    return f"{point.p99_ms:.0f} ms{speed}"


def _history_tables(figures: history.HistoryFigures) -> str:
    by_layout = {footprint.layout: footprint for footprint in figures.footprints}
    meaning = {
        "old": "before: one table, uuid key and an (account, ts) index",
        "partitioned": "**now: day partitions, key (account, ts), BRIN, compressed inline**",
        "uncompressed": "the same without inline compression (toast_tuple_target default)",
        "narrow": "measured, not applied: underlyings in a narrow table, one row each",
    }
    lines = [
        "### History at scale",
        "",
        f"Bytes per snapshot ({by_layout['old'].rows:,} format-2 rows of 60 accounts, two"
        " underlyings each, table and indexes):",
        "",
        "| layout | heap B/row | index B/row | total B/row |",
        "|---|---:|---:|---:|",
    ]
    for layout, footprint in by_layout.items():
        lines.append(
            f"| {meaning.get(layout, layout)} | {footprint.heap_bytes / footprint.rows:.0f} |"
            f" {footprint.index_bytes / footprint.rows:.0f} | {footprint.bytes_per_row:.0f} |"
        )
    rollups = figures.rollup_bytes_per_row
    minutes, seconds = figures.rollup_refresh
    lines += [
        "",
        f"Rollup rows, table and indexes: {rollups['portfolio_greeks_1m']:.0f} B (1 minute),"
        f" {rollups['portfolio_greeks_1h']:.0f} B (1 hour). Rolling up {minutes:,} minutes"
        f" ({minutes * 12:,} raw rows) took {seconds:.0f} s: {minutes / seconds:,.0f} minutes a"
        " second, where 60 accounts make one a second.",
        "",
        f"Queries over {figures.accounts} accounts filled at full density (a row each every 5 s)"
        f" for {figures.days:g} days; rollups at full density for 60 accounts (1 minute: 7 days;"
        " 1 hour: a whole year). Server time (EXPLAIN ANALYZE), best of three:",
        "",
        "| query | rows | planning | execution | partitions read |",
        "|---|---:|---:|---:|---:|",
    ]
    for query in figures.queries:
        lines.append(
            f"| {query.name} | {query.rows:,} | {query.planning_ms:.1f} ms |"
            f" {query.execution_ms:.1f} ms | {query.partitions} |"
        )
    lines += [
        "",
        "A year of raw rows is not generated: a range query reads only the partitions of its"
        " range (pruned at plan or run time), so the rest of the year adds partitions to prune,"
        " measured here with 90 empty day partitions (or 13 week partitions) before the filled"
        " days. Partitions for a year: 365 by day, 53 by week. Fill notes: "
        + "; ".join(figures.notes)
        + ".",
    ]
    return "\n".join(lines)


def _collector_table(costs: list[collector.CollectorFigures]) -> str:
    lines = [
        f"### Collector cost at 5 s ({costs[0].seconds:.0f} s per size, prices moving)",
        "",
        "| book | options | market data | CPU s/hour | % of a core | floor CPU s/hour | x floor |"
        " peak RSS | jitter p50 | jitter p99 | ticks |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for cost in costs:
        lines.append(
            f"| {cost.book} | {cost.options:,} | {cost.mode} | {cost.cpu_s_per_hour:.1f} |"
            f" {cost.cpu_s_per_hour / 36:.2f} % | {cost.floor_cpu_s_per_hour:.1f} |"
            f" {cost.cpu_s_per_hour / cost.floor_cpu_s_per_hour:.2f} |"
            f" {cost.peak_rss_mb:.0f} MB | {cost.jitter_p50_ms:.1f} ms |"
            f" {cost.jitter_p99_ms:.1f} ms | {cost.ticks} |"
        )
    lines += [
        "",
        "Goals at 1,000 options: under 1 % of a core (36 CPU s/hour), under 150 MB, jitter p99"
        " under 20 ms. The floor is a bare ib_async client holding the same subscriptions and"
        " doing nothing else: the cost of receiving the data at all. Jitter is from the"
        " scheduled instant to the snapshot's spool write.",
    ]
    largest = max((c for c in costs if c.mode == "stream"), key=lambda c: c.options)
    if largest.cpu_s_per_hour > 36 and largest.floor_cpu_s_per_hour > 36:
        lines += [
            "",
            f"At {largest.options:,} streaming options the CPU goal is not met, and cannot be by"
            " any ib_async client at this update rate: the floor alone is"
            f" {largest.floor_cpu_s_per_hour / 36:.1f} % of a core (the simulator sends each"
            " option's changed ticks every 250 ms), and the collector costs"
            f" {largest.cpu_s_per_hour / largest.floor_cpu_s_per_hour:.2f} x the floor. Fewer"
            " updates are the lever: snapshot mode (`IB_MARKET_DATA_MODE=snapshot`) holds no"
            " line and refreshes each option every ceil(n / 100) ticks (50 s at 1,000).",
        ]
    return "\n".join(lines)


def _document(report: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "# Benchmarks\n\n"
        "Reproduce with `make bench` (about two minutes). Machines here are shared and noisy"
        " (2 cores): compare the ratios, which are measured side by side in one run, rather"
        " than the absolute figures.\n\n"
        f"Last run: {stamp} on {machine()}.\n\n"
        f"{report}\n"
    )


if __name__ == "__main__":
    main()
