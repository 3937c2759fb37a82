"""`python -m writer` (`bridge-writer`): settings and logging wired to the Writer until SIGTERM."""

from __future__ import annotations

from shared.service import serve
from writer.settings import WriterSettings
from writer.writer import Writer


def main() -> None:
    serve(
        "bridge-writer",
        WriterSettings.from_environ,
        Writer,
        urls_with_passwords=lambda settings: settings.database.secret_urls(),
    )


if __name__ == "__main__":
    main()
