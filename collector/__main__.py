"""`python -m collector` (`bridge-collector`): settings and logging wired to the Collector."""

from __future__ import annotations

from collector.collector import Collector
from collector.settings import CollectorSettings
from shared.service import serve


def main() -> None:
    serve(
        "bridge-collector",
        CollectorSettings.from_environ,
        Collector,
        urls_with_passwords=lambda settings: [settings.portal_url],
    )


if __name__ == "__main__":
    main()
