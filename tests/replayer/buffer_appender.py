"""A stand-in writer for the race test: appends batches to the buffer as the writer does.

`python -m tests.replayer.buffer_appender BUFFER ROUNDS BATCH` appends ROUNDS batches of BATCH
distinct snapshot lines through `Buffer.append` (lock, append, fsync), as fast as it can.
"""

from __future__ import annotations

import sys
from pathlib import Path

from shared.buffer import Buffer
from tests import builders


def main() -> None:
    path, rounds, batch = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    buffer = Buffer(path)
    lines = builders.snapshots(rounds * batch, accounts=7)
    for start in range(0, len(lines), batch):
        buffer.append(lines[start : start + batch])


if __name__ == "__main__":
    main()
