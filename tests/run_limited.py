"""Run one of the bridge's processes with a file size limit, as a full disk refuses writes.

`python -m tests.run_limited BYTES MODULE`: no file the process writes may grow past BYTES
(RLIMIT_FSIZE, inherited by nothing else); SIGXFSZ is ignored so a refused write is the
EFBIG error a program sees, not a kill.
"""

from __future__ import annotations

import resource
import runpy
import signal
import sys


def main() -> None:
    limit_bytes, module = int(sys.argv[1]), sys.argv[2]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, resource.RLIM_INFINITY))
    sys.argv = [module]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
