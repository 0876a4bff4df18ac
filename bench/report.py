"""What every benchmark shares: the machine it ran on, and printing / appending its markdown section."""

from __future__ import annotations

import os
import platform


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import numpy as np
    import torch

    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )


def emit(lines: list[str], out: str | None) -> str:
    """Print the section and append it to ``out`` (the docs' benchmark page) when given."""
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write("\n" + text)
    return text
