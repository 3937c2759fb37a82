"""`python -m replayer` (`bridge-replayer`): settings and logging wired to the Replayer."""

from __future__ import annotations

from replayer.replayer import Replayer
from replayer.settings import ReplayerSettings
from shared.service import serve


def main() -> None:
    serve(
        "bridge-replayer",
        ReplayerSettings.from_environ,
        Replayer,
        urls_with_passwords=lambda settings: settings.database.secret_urls(),
    )


if __name__ == "__main__":
    main()
