"""The asyncio TCP server of the fake IB Gateway: sockets, timers and faults around `Session`.

Each connection reads frames, answers through its session and closes when told to. One task
streams market data to every session. Faults arrive as events from `market.faults`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from simulator.faults import FaultEvent
from simulator.model import Market, Position
from simulator.tws import messages
from simulator.tws.ids import MAX_SERVER_VERSION, MIN_SERVER_VERSION
from simulator.tws.requests import parse_request
from simulator.tws.session import (
    GatewayState,
    Outgoing,
    Session,
    connectivity_lost_notices,
    farm_notices,
    position_changes,
)
from simulator.tws.wire import (
    FrameDecoder,
    WireError,
    encode_frame,
    negotiate_version,
    parse_handshake,
    split_fields,
)

logger = logging.getLogger(__name__)

# A client that stops reading is dropped once this much is queued for it, as TWS drops it.
_MAX_WRITE_BUFFER_BYTES = 8 * 1024 * 1024


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.session: Session | None = None
        self.peer = writer.get_extra_info("peername")

    def send(self, outgoing: Outgoing) -> None:
        if not outgoing or self.writer.is_closing():
            return
        self.writer.write(b"".join(encode_frame(fields) for fields in outgoing))
        if self.writer.transport.get_write_buffer_size() > _MAX_WRITE_BUFFER_BYTES:
            logger.warning("dropping %s: it does not read what it is sent", self.peer)
            self.writer.transport.abort()

    def close(self) -> None:
        self.writer.close()


class SocketGateway:
    """Serves the TWS API over TCP from one `Market`, its faults included."""

    def __init__(
        self,
        market: Market,
        *,
        tick_interval_s: float = 0.25,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.market = market
        self.tick_interval_s = tick_interval_s
        self.clock = clock
        self.state = GatewayState()
        self._connections: set[_Connection] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._streamer: asyncio.Task[None] | None = None
        self._reset_timer: asyncio.TimerHandle | None = None
        self._reset_ending: asyncio.Task[None] | None = None
        self._unstalled = asyncio.Event()
        self._address: tuple[str, int] = ("127.0.0.1", 0)
        self._running = False
        self._positions = self._position_snapshot()
        market.faults.subscribe(self._on_fault)
        market.subscribe(self._on_market)

    @property
    def port(self) -> int:
        """The port bound by `start` (the ephemeral one when asked for 0)."""
        return self._address[1]

    @property
    def sessions(self) -> list[Session]:
        """Sessions past startApi, for tests and the control endpoint."""
        return [c.session for c in self._connections if c.session and c.session.started]

    async def start(self, host: str, port: int) -> int:
        self._running = True
        self._follow_stall()
        server = await asyncio.start_server(self._serve, host, port)
        self._server = server
        self._address = (host, server.sockets[0].getsockname()[1])
        self._streamer = asyncio.create_task(self._stream_forever())
        if self._reset_pending():
            self._reset_started()
        logger.info("TWS socket gateway listening on %s:%d", *self._address)
        return self._address[1]

    async def stop(self) -> None:
        self._running = False
        if self._reset_timer is not None:
            self._reset_timer.cancel()
        for task in (self._streamer, self._reset_ending):
            if task is not None:
                task.cancel()
        self._close_listener()
        for connection in list(self._connections):
            connection.close()
        for task in list(self._handlers):
            task.cancel()
        tasks = [*self._handlers, *(t for t in (self._streamer, self._reset_ending) if t)]
        await asyncio.gather(*tasks, return_exceptions=True)

    def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        connection = _Connection(reader, writer)
        self._connections.add(connection)
        logger.debug("connection from %s", connection.peer)
        try:
            await self._converse(connection)
        except (WireError, ConnectionError) as exc:
            logger.info("closing %s: %s", connection.peer, exc)
        except Exception:
            # A bug must cost one connection, not the gateway; the client sees a disconnect.
            logger.exception("closing %s after an unexpected error", connection.peer)
        finally:
            self._connections.discard(connection)
            self._handlers.discard(task)
            if connection.session is not None:
                connection.session.close()
            connection.close()

    async def _converse(self, connection: _Connection) -> None:
        decoder = FrameDecoder(expect_handshake_prefix=True)
        while data := await connection.reader.read(65536):
            for payload in decoder.feed(data):
                await self._unstalled.wait()
                if self.market.faults.reply_delay_s > 0:
                    await asyncio.sleep(self.market.faults.reply_delay_s)
                if not self._answer(connection, payload):
                    await connection.writer.drain()
                    return
            await connection.writer.drain()

    def _answer(self, connection: _Connection, payload: bytes) -> bool:
        """Serve one frame; False once the connection must close."""
        now = self.clock()
        session = connection.session
        if session is None:
            version = negotiate_version(
                parse_handshake(payload), MIN_SERVER_VERSION, MAX_SERVER_VERSION
            )
            connection.session = Session(self.market, self.state, version)
            connection.send([messages.handshake_reply(version, now)])
            return True
        request = parse_request(split_fields(payload), session.server_version)
        logger.debug("client %s: %s", session.client_id, request)
        connection.send(session.handle(request, now))
        return not session.closing

    async def _stream_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval_s)
            self._stream_once()

    def _stream_once(self) -> None:
        now = self.clock()
        self._broadcast(lambda session: session.stream(now))

    def _broadcast(self, notices: Callable[[Session], Outgoing]) -> None:
        if not self._unstalled.is_set():
            return  # a stalled gateway sends nothing at all
        for connection in list(self._connections):
            session = connection.session
            if session is None or not session.started:
                continue
            try:
                connection.send(notices(session))
            except Exception:
                # The streamer and the model's callbacks must outlive one bad session.
                logger.exception("dropping %s after an unexpected error", connection.peer)
                connection.close()

    def _position_snapshot(self) -> dict[tuple[str, int], Position]:
        return {
            (item.account, item.instrument.conid): item
            for account in self.market.accounts()
            for item in self.market.positions(account)
        }

    def _on_market(self, what: str) -> None:
        if what != "positions" or not self._running:
            return
        after = self._position_snapshot()
        changes = position_changes(self._positions, list(after.values()))
        self._positions = after
        if changes:
            now = self.clock()
            self._broadcast(lambda session: session.positions_changed(changes, now))

    def _on_fault(self, event: FaultEvent) -> None:
        if not self._running:
            return
        logger.info("fault: %s", event)
        if event == "drop_connections":
            for connection in list(self._connections):
                # Free the client id now: a client may reconnect before its old socket's EOF.
                if connection.session is not None:
                    connection.session.close()
                connection.close()
        elif event == "reset_started":
            self._reset_started()
        elif event == "reset_ended" or (event == "changed" and not self._reset_pending()):
            self._reset_ended()
        elif event in ("farm_broken", "farm_ok"):
            self.state.farms_ok = event == "farm_ok"
            self._broadcast(
                lambda session: farm_notices(
                    ok=self.state.farms_ok, server_version=session.server_version
                )
            )
        self._follow_stall()

    def _reset_pending(self) -> bool:
        """Whether faults.reset_until still lies ahead (a cleared fault ends the reset)."""
        reset_until = self.market.faults.reset_until
        return reset_until is not None and reset_until > self.clock()

    def _follow_stall(self) -> None:
        if self.market.faults.stalled:
            self._unstalled.clear()
        else:
            self._unstalled.set()

    def _reset_started(self) -> None:
        """IB's servers are away: 1100 on open sockets, new connections refused."""
        if self.state.connectivity_lost:
            return
        self.state.connectivity_lost = True
        self._close_listener()
        self._broadcast(lambda session: connectivity_lost_notices(session.server_version))
        reset_until = self.market.faults.reset_until
        if reset_until is not None:
            # The reset ends on time even if nobody emits "reset_ended".
            delay_s = max(0.0, reset_until - self.clock())
            self._reset_timer = asyncio.get_running_loop().call_later(delay_s, self._reset_ended)

    def _reset_ended(self) -> None:
        if not self.state.connectivity_lost or self._reset_ending is not None:
            return
        if self._reset_timer is not None:
            self._reset_timer.cancel()
            self._reset_timer = None
        self._reset_ending = asyncio.get_running_loop().create_task(self._end_reset())

    async def _end_reset(self) -> None:
        """Listen again first, so a client told 1102 can connect at once; then tell them."""
        server = await asyncio.start_server(self._serve, *self._address)
        self._reset_ending = None
        if not self._running:
            server.close()
            return
        self._server = server
        self.state.connectivity_lost = False
        data_lost = self.market.faults.reset_data_lost
        self._broadcast(lambda session: session.connectivity_restored(data_lost=data_lost))
