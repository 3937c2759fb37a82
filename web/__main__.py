"""`python -m web` (`bridge-web`): settings and logging wired to the WebServer until SIGTERM."""

from __future__ import annotations

from shared.service import serve
from web.server import WebServer
from web.settings import WebSettings


def main() -> None:
    serve(
        "bridge-web",
        WebSettings.from_environ,
        WebServer,
        urls_with_passwords=lambda settings: settings.database.secret_urls(),
    )


if __name__ == "__main__":
    main()
