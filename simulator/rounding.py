"""How the Client Portal gateway rounds what it writes, shared by the Portal side and /truth's
Portal view: prices to the cent (in the quoted units), Greeks to three decimals, as recorded
(`"31":"168.42"`, `"7308":"0.271"`, `"7309":"0.022"`; docs/simulator.md has the sources)."""

from __future__ import annotations

PRICE_DECIMALS = 2
GREEK_DECIMALS = 3


def price(value: float) -> str:
    return f"{value:.{PRICE_DECIMALS}f}"


def greek(value: float) -> str:
    # "-0.000" is how a tiny negative Greek rounds; the gateway writes "0.000" (no sign).
    text = f"{value:.{GREEK_DECIMALS}f}"
    return text[1:] if float(text) == 0 and text.startswith("-") else text


def as_read(text: str) -> float:
    """The number a client reads back from what the gateway wrote."""
    return float(text)
