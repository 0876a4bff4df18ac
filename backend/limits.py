"""What one request may ask for: sizes, counts and budgets, checked before any work starts. The server's
params (``backend/methods/params.py``), the CLI and the rooms read the same numbers from here."""

from __future__ import annotations

ALIGN_SIZES = (16, 1024)  # side of an aligned crop, pixels
MAX_TOP_K = 1000  # candidates of one retrieval
MAX_BATCH_TOP_K = 100  # candidates per frame of a batch retrieval
MAX_BATCH = 10_000  # images (or sampled video frames) of one batch request
MAX_FRAME_STEP = 1000
MAX_COORD = 1e7  # |box coordinate|, pixels (images are at most 64 MP)
MAX_WEIGHT = 1e6  # a retrieval weight; larger ones only overflow the score
MAX_FRAMES = 600  # frames of one transition
WARP_MAX_SIDE = 2048  # the warp works (and writes frames) at most this long a side; landmarks map back
MAX_OUTPUT_PIXELS = 1_000_000_000  # frames x pixels one request may write (about 3 GB of RGB)
MAX_KEYFRAME_FILE = 16 << 20  # bytes of a key-frame JSON file
MAX_INTENSITY = 10.0  # multiples of a named expression's mean displacement, in key frames
