"""Contact sheet of a retrieval: the query face beside its candidates, with labels and scores."""

from __future__ import annotations

import cv2
import numpy as np

from . import outputs
from .imageio import decode_image


def _tile(rgb: np.ndarray, size: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = size / max(h, w)
    img = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    out = np.full((size, size, 3), 255, np.uint8)
    y, x = (size - img.shape[0]) // 2, (size - img.shape[1]) // 2
    out[y : y + img.shape[0], x : x + img.shape[1]] = img
    return out


def retrieval_sheet(query_image: str, result: dict, out: str, tile: int = 200) -> str:
    outputs.file_path(out, outputs.IMAGE_EXTS)
    dec = decode_image(query_image)
    l, t, r, b = (round(v * dec.scale) for v in result["box"])
    pad = int(0.35 * (r - l))
    h, w = dec.rgb.shape[:2]
    face = dec.rgb[max(0, t - pad) : min(h, b + pad), max(0, l - pad) : min(w, r + pad)]
    tiles = [_tile(face, tile)]
    captions = [(f"query: {result['label']}", f"p={max(result['probabilities'].values()):.2f}")]
    for c in result["candidates"]:
        tiles.append(_tile(decode_image(c["thumbnail"]).rgb, tile))
        captions.append((f"#{c['rank']} {c['label'] or c['id']}", f"score {c['score']:.3f} (JS {c['js']:.3f})"))
    band = 44
    sheet = np.full((tile + band, tile * len(tiles) + 8 * (len(tiles) - 1), 3), 255, np.uint8)
    for k, (img, (a, bline)) in enumerate(zip(tiles, captions)):
        x = k * (tile + 8)
        sheet[:tile, x : x + tile] = img
        color = (200, 40, 40) if k == 0 else (30, 30, 30)
        cv2.putText(sheet, a, (x + 4, tile + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)
        cv2.putText(sheet, bline, (x + 4, tile + 37), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (90, 90, 90), 1, cv2.LINE_AA)
    return outputs.write_image(out, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def frames_sheet(frames: list[str], out: str, columns: int = 8, tile: int = 160) -> str:
    """A grid of sequence frames, in order."""
    outputs.file_path(out, outputs.IMAGE_EXTS)
    tiles = [_tile(decode_image(f).rgb, tile) for f in frames]
    rows = []
    for i in range(0, len(tiles), columns):
        row = tiles[i : i + columns]
        row += [np.full_like(tiles[0], 255)] * (columns - len(row))
        rows.append(np.hstack(row))
    return outputs.write_image(out, cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))


def frames_gif(frames: list[str], out: str, fps: int = 12) -> str:
    from PIL import Image

    outputs.file_path(out, (".gif",))
    imgs = [Image.fromarray(decode_image(f).rgb) for f in frames]

    def save(path: str) -> None:
        imgs[0].save(path, save_all=True, append_images=imgs[1:] + imgs[::-1], duration=int(1000 / fps), loop=0)

    return outputs.write_with(out, save, (".gif",))
