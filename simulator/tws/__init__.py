"""The TWS socket side of the simulator: a fake IB Gateway speaking the TWS API over TCP."""

from simulator.tws.gateway import SocketGateway

__all__ = ["SocketGateway"]
