"""`python -m alerter` (`bridge-alerter`): settings and logging wired to the Alerter."""

from __future__ import annotations

from alerter.alerter import Alerter
from alerter.settings import AlerterSettings
from shared.service import serve


def main() -> None:
    serve(
        "bridge-alerter",
        AlerterSettings.from_environ,
        Alerter,
        urls_with_passwords=lambda settings: settings.database.secret_urls(),
    )


if __name__ == "__main__":
    main()
