"""The exception tree of the collector; ib_async's and aiohttp's errors are translated into it
once, in the source that called them; the process pool's, in collector/worker.py.

    CollectorError (BridgeError)
    ├── GatewayUnavailable      cannot reach the gateway, or the connection broke: reconnect
    │   ├── GatewayStalled      socket open but nothing answers the current-time probe
    │   └── ClientIdInUse       error 326: another application holds our client id
    ├── SessionRequired         Portal: no authenticated session; a browser login is needed
    ├── GatewayPacing           Portal: 429, back off for the penalty period
    ├── GatewayReplyError       a reply that is not what the protocol promises (quarantined)
    └── WorkerFailed            the worker process (collector/worker.py) gave no result
        ├── WorkerCrashed       its process died; the next job starts a new one
        └── WorkerTimeout       no result within the time the caller gave it
"""

from __future__ import annotations

from shared.errors import BridgeError


class CollectorError(BridgeError):
    """Base class of the collector's errors; `code` is IB's error code when there is one."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class GatewayUnavailable(CollectorError):
    """The gateway cannot be reached or the connection broke."""


class GatewayStalled(GatewayUnavailable):
    """The connection is open but the gateway does not answer."""


class ClientIdInUse(GatewayUnavailable):
    """IB error 326: the client id is taken; retried, never silently replaced."""


class SessionRequired(CollectorError):
    """Client Portal: the gateway has no authenticated session (a browser login is needed)."""


class GatewayPacing(CollectorError):
    """Client Portal: 429 Too Many Requests; `retry_after_s` is how long to stay away."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class GatewayReplyError(CollectorError):
    """A reply that breaks the protocol (not JSON, wrong shape): reported, never guessed at."""


class WorkerFailed(CollectorError):
    """The worker process gave no result: the work it was given is not done."""


class WorkerCrashed(WorkerFailed):
    """The worker process died (killed, out of memory, a crash in native code)."""


class WorkerTimeout(WorkerFailed):
    """The worker's result was not there in the time given; the job goes on in the worker."""
