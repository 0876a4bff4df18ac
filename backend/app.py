"""The served backend: the JSON-RPC server (``backend/server.py``) with the work methods
(``backend/methods/``), over stdin/stdout. The one place the two meet.

Stdout carries only protocol: file descriptor 1 is moved aside at start and pointed at stderr, so a stray
print (or a C library) cannot corrupt the stream.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from deepexpr_blender.core import protocol as P

from . import __version__
from .config import int_in, option
from .methods import registry
from .server import Server

log = logging.getLogger(__name__)


@dataclass
class ServeConfig:
    """How the served backend uses the machine (the ``serve`` command's options)."""

    threads: int = option(
        1, "CPU threads for torch and OpenCV (Blender keeps the rest)", env="DEEPEXPR_THREADS", parse=int_in(1, 256)
    )


def limit_threads(n: int) -> None:
    """Cap torch's and OpenCV's thread pools at ``n`` (before any model runs)."""
    import cv2
    import torch

    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # only settable before the first parallel work; the intra-op cap is what matters
        pass
    cv2.setNumThreads(n)
    log.info("using %d CPU thread(s)", n)


def protocol_stdout() -> IO[bytes]:
    """Take file descriptor 1 for the protocol and point fd 1 (and sys.stdout) at stderr."""
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(proto_fd, "wb", buffering=0)


def serve_stdio(engine_factory: Callable[[dict], Any], cfg: ServeConfig | None = None) -> int:
    """Serve until ``exit`` or the end of stdin; never returns (the process exits with the protocol's code)."""
    cfg = cfg or ServeConfig()
    out = protocol_stdout()
    limit_threads(cfg.threads)
    server = Server(engine_factory, registry(), sys.stdin.buffer, out)
    log.info("deepexpr backend %s serving protocol %s on stdio (pid %d)", __version__, P.PROTOCOL_VERSION, os.getpid())
    code = server.serve()
    # The reader thread may still hold stdin's buffer lock; a normal interpreter shutdown would then abort.
    logging.shutdown()
    sys.stderr.flush()
    os._exit(code)
