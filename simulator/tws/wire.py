"""TWS API wire format, both directions: length-prefixed frames of NUL-terminated text fields.

Pure functions and one incremental decoder; no sockets. The handshake is the one message that is
not a normal frame: the raw bytes ``API\\0`` followed by a frame holding ``v<min>..<max>``.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Field = str | int | float | bool | None
Fields = Sequence[Field]

HANDSHAKE_PREFIX = b"API\0"
# A frame longer than this is garbage or an attack, not a request (IB's own limit is 16 MiB).
MAX_FRAME_BYTES = 16 * 1024 * 1024
# Java's Double.MAX_VALUE as TWS spells it: the "unset" marker ibapi recognises in Decimal fields.
UNSET_DOUBLE = "1.7976931348623157E308"

_LENGTH = struct.Struct(">I")
_VERSION_RANGE = re.compile(r"v(\d+)(?:\.\.(\d+))?(?:\s+(.*))?")


class WireError(ValueError):
    """The peer sent bytes that are not the TWS API protocol."""


@dataclass(frozen=True)
class Handshake:
    min_version: int
    max_version: int
    connect_options: str


def encode_field(value: Field) -> str:
    """One field as TWS writes it: bools as 1/0, None as empty, floats without a trailing .0."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no TWS spelling; send the protocol's sentinel")
        # Whole numbers go out as integers ("100", not "100.0"): ibapi parses sizes and
        # positions as Decimal and both spellings are valid floats.
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    text = str(value)
    if "\0" in text:
        raise ValueError(f"field {text!r} contains NUL")
    return text


def encode_frame(fields: Iterable[Field]) -> bytes:
    """A whole message: the 4-byte big-endian length, then every field followed by NUL."""
    payload = "".join(encode_field(field) + "\0" for field in fields).encode("ascii", "replace")
    return _LENGTH.pack(len(payload)) + payload


def encode_handshake(min_version: int, max_version: int, connect_options: str = "") -> bytes:
    """What a client sends first; the simulator only decodes it, tests use this to speak it."""
    text = f"v{min_version}..{max_version}" + (f" {connect_options}" if connect_options else "")
    payload = text.encode("ascii")
    return HANDSHAKE_PREFIX + _LENGTH.pack(len(payload)) + payload


def split_fields(payload: bytes) -> list[str]:
    """The text fields of one frame's payload, without the empty string after the last NUL."""
    text = payload.decode("utf-8", errors="backslashreplace")
    fields = text.split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


def parse_handshake(payload: bytes) -> Handshake:
    """The client's version range from the frame that follows ``API\\0``."""
    match = _VERSION_RANGE.fullmatch(payload.decode("ascii", errors="replace").strip("\0 "))
    if match is None:
        raise WireError(f"not a TWS API version range: {payload!r}")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if low > high:
        raise WireError(f"empty version range v{low}..{high}")
    return Handshake(low, high, match.group(3) or "")


def negotiate_version(handshake: Handshake, server_min: int, server_max: int) -> int:
    """The highest version both sides speak, as TWS answers; WireError when there is none."""
    version = min(handshake.max_version, server_max)
    if version < max(handshake.min_version, server_min):
        raise WireError(
            f"client speaks v{handshake.min_version}..{handshake.max_version}, "
            f"the simulator v{server_min}..{server_max}"
        )
    return version


class FrameDecoder:
    """Cuts a byte stream into frame payloads; bytes of an unfinished frame wait for the rest.

    A server-side decoder first expects the raw ``API\\0`` prefix of the handshake.
    """

    def __init__(self, *, expect_handshake_prefix: bool = False) -> None:
        self._buffer = bytearray()
        self._awaiting_prefix = expect_handshake_prefix

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        if self._awaiting_prefix:
            if not self._buffer.startswith(HANDSHAKE_PREFIX[: len(self._buffer)]):
                raise WireError(
                    f"the stream does not start with API\\0: {bytes(self._buffer[:8])!r}"
                )
            if len(self._buffer) < len(HANDSHAKE_PREFIX):
                return []
            del self._buffer[: len(HANDSHAKE_PREFIX)]
            self._awaiting_prefix = False
        payloads: list[bytes] = []
        while len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            if length > MAX_FRAME_BYTES:
                raise WireError(f"frame of {length} bytes exceeds {MAX_FRAME_BYTES}")
            end = _LENGTH.size + length
            if len(self._buffer) < end:
                break
            payloads.append(bytes(self._buffer[_LENGTH.size : end]))
            del self._buffer[:end]
        return payloads
