"""The backend with something writing to file descriptor 1 behind its back (as a C library or a stray print
would), right after it took fd 1 for the protocol: ``python -m tests.stray_stdout_backend <cli args>``."""

from __future__ import annotations

import os
import sys

import backend.app as app
from backend.cli import main

_protocol_stdout = app.protocol_stdout


def _noisy_protocol_stdout():
    out = _protocol_stdout()
    os.write(1, b"stray bytes on fd 1\n")
    print("a stray print")
    return out


if __name__ == "__main__":
    app.protocol_stdout = _noisy_protocol_stdout
    sys.exit(main())
