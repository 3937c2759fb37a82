"""Which hit of a Client Portal symbol search is the beta benchmark. Pure: no I/O, no clock.

`/iserver/secdef/search?symbol=SPY` answers every listing it knows under that symbol (the same
ETF on other exchanges and in other currencies, CFDs, unrelated companies), in its own order.
A hit names its primary exchange (`description`, also the end of `companyHeader`, "SPDR S&P 500
ETF TRUST - ARCA") and its asset classes (`sections[].secType`) but not its currency, which
`/trsrv/secdef` gives per conid. So the benchmark is chosen in two steps: the hits with the
symbol, a stock or ETF section and the configured exchange (`benchmark_candidates`), then the
first of those whose secdef currency is the configured one (`benchmark_in_currency`).
docs/ibkr-conventions.md, "The Portal's benchmark by exchange and currency". The same two steps
find SPX, the index field 7696 is stated in (an `IND` section on CBOE, in USD): docs/
ibkr-conventions.md, "The gateway's own beta-weighted delta".
"""

from __future__ import annotations

from typing import Any, Final

EQUITY: Final = ("STK", "ETF")


def benchmark_candidates(
    hits: Any, symbol: str, exchange: str, sec_types: tuple[str, ...] = EQUITY
) -> list[int]:
    """Conids of the search hits that are `symbol` listed on `exchange` with a section of one
    of `sec_types` (a stock or ETF by default), in the gateway's order; anything malformed is
    skipped."""
    found: list[int] = []
    for hit in hits if isinstance(hits, list) else []:
        if not isinstance(hit, dict):
            continue
        conid = str(hit.get("conid", ""))
        if not conid.isdigit() or str(hit.get("symbol", "")).upper() != symbol.upper():
            continue
        if _exchange_of(hit) != exchange.upper():
            continue
        sections = hit.get("sections")
        listed_types = {
            str(section.get("secType", "")).upper()
            for section in (sections if isinstance(sections, list) else [])
            if isinstance(section, dict)
        }
        if listed_types & set(sec_types) and int(conid) not in found:
            found.append(int(conid))
    return found


def benchmark_in_currency(candidates: list[int], secdefs: Any, currency: str) -> int | None:
    """The first candidate whose `/trsrv/secdef` entry trades in `currency`; None if none."""
    entries = secdefs.get("secdef") if isinstance(secdefs, dict) else None
    currency_of = {
        str(entry.get("conid", "")): str(entry.get("currency", "")).upper()
        for entry in (entries if isinstance(entries, list) else [])
        if isinstance(entry, dict)
    }
    return next(
        (conid for conid in candidates if currency_of.get(str(conid)) == currency.upper()), None
    )


def _exchange_of(hit: dict[str, Any]) -> str:
    """The primary exchange: `description`, else what follows the last " - " of the header."""
    description = hit.get("description")
    if isinstance(description, str) and description.strip():
        return description.strip().upper()
    header = hit.get("companyHeader")
    if isinstance(header, str) and " - " in header:
        return header.rsplit(" - ", 1)[1].strip().upper()
    return ""
