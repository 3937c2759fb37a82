"""The simulator as one program: the socket side, the Portal side (HTTPS) and the control endpoint
over one Market, with a self-signed certificate made at start."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import ssl

import trustme

from simulator.control import ControlEndpoint
from simulator.model import Market
from simulator.portal import PortalGateway
from simulator.scenario import load
from simulator.settings import SimulatorSettings
from simulator.tws import SocketGateway

logger = logging.getLogger("simulator")


class Simulator:
    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        scenario = load(settings.scenario)
        if settings.seed is not None:
            scenario = dataclasses.replace(scenario, seed=settings.seed)
        if settings.frozen:
            scenario = dataclasses.replace(scenario, frozen=True)
        self.market = Market(scenario)
        self.socket = SocketGateway(self.market)
        self.portal = PortalGateway(
            self.market,
            pacing=settings.portal_pacing,
            penalty_s=settings.portal_penalty_s,
            idle_expiry_s=settings.portal_idle_expiry_s,
        )
        self.control = ControlEndpoint(self.market)
        self.certificate_authority = trustme.CA()
        self.socket_port = self.portal_port = self.control_port = 0

    @property
    def portal_url(self) -> str:
        return f"https://{self.settings.host}:{self.portal_port}/v1/api"

    def _tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.certificate_authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        return context

    async def start(self) -> None:
        settings = self.settings
        self.socket_port = await self.socket.start(settings.host, settings.socket_port)
        self.portal_port = await self.portal.start(settings.host, settings.portal_port, self._tls())
        self.control_port = await self.control.start(settings.host, settings.control_port)
        logger.info(
            "simulator serving: socket %s, portal %s, control http://%s:%s",
            self.socket_port, self.portal_url, settings.host, self.control_port,
        )  # fmt: skip

    async def stop(self) -> None:
        await self.control.stop()
        await self.portal.stop()
        await self.socket.stop()

    async def run(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()
            logger.info("simulator stopped")
