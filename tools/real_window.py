"""The real-window test tier: a real Blender window under Xvfb, driven through its own event loop.

    sudo .venv/bin/python tools/real_window.py [--chroot DIR] [--out out/real-window] [--docs docs/extension]

Debian's Blender 4.3 runs in a Debian trixie chroot (set up on first use: ``debootstrap trixie`` then
``apt-get install blender xvfb``; ~1.5 GB, needs root and network). Each run:

1. builds the extension zip and the inputs (the sample face, a face-less image, a frame folder and a video of
   the sample face) under ``--out``;
2. in a private mount namespace (nothing stays mounted afterwards), binds the checkout, the backend's Python
   and its virtual environment into the chroot at the same paths (Debian's Blender has no torch: the
   add-on starts the backend from the host's environment, which runs unchanged in the chroot), starts Xvfb
   with its framebuffer in a file, and runs ``blender --python tools/real_window_driver.py``: it installs the
   zip and goes through the workflow (timers fire, modal operators run), writing screenshots and
   ``result.json``;
3. runs ``tests/test_real_window.py`` on what it wrote (screenshots, panel states, Blender's log);
4. with ``--docs``, copies the screenshots (our renders and the sample face only) into that folder.

Not part of ``make test`` (root, debootstrap and a 1.5 GB chroot); ``make test-real-window`` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Screenshots for docs/extension.md: the sidebar alone, the dialog, or the whole window (half size).
SIDEBAR_SHOTS = ("capture", "poses", "error", "library_progress")
WINDOW_SHOTS = ("batch", "sequencer_batch", "transition")
MIRROR = "http://deb.debian.org/debian"


def run(cmd: list[str], **kw) -> None:
    print("+", " ".join(shlex.quote(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def in_chroot(root: str, inner: str, binds: list[str]) -> int:
    """Run ``inner`` (bash) in the chroot with ``binds`` mounted at the same paths, /proc and /dev: all in a
    private mount namespace, so nothing stays mounted when it ends."""
    lines = ["set -e"]
    for path in binds:
        inside = shlex.quote(root + path)
        lines.append(f"mkdir -p {inside} && mount --bind {shlex.quote(path)} {inside}")
    lines += [
        f"mount -t proc proc {shlex.quote(root)}/proc",
        f"mount --rbind /dev {shlex.quote(root)}/dev",
        f"exec chroot {shlex.quote(root)} /bin/bash -c {shlex.quote(inner)}",
    ]
    cmd = ["unshare", "--mount", "--propagation", "private", "/bin/bash", "-c", "\n".join(lines)]
    return subprocess.run(cmd).returncode


def ensure_chroot(root: str, mirror: str) -> None:
    """Debian trixie with Blender and Xvfb at ``root`` (made once)."""
    if os.path.isfile(os.path.join(root, "usr/bin/blender")) and os.path.isfile(os.path.join(root, "usr/bin/Xvfb")):
        return
    if shutil.which("debootstrap") is None:
        raise SystemExit("debootstrap is needed to make the chroot (apt-get install debootstrap)")
    if not os.path.isfile(os.path.join(root, "usr/bin/apt-get")):
        os.makedirs(root, exist_ok=True)
        run(["debootstrap", "trixie", root, mirror])
    cmd = "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y blender xvfb"
    if in_chroot(root, cmd, []) != 0:
        raise SystemExit("apt-get install blender xvfb failed in the chroot")


def make_inputs(out: str) -> dict:
    """The sample face, a face-less grey image, 16 frames (the face, then mirrored) as a folder and a video."""
    import cv2
    import numpy as np

    sys.path.insert(0, ROOT)
    from backend.demo import sample_face

    face_path = sample_face(out)
    face = cv2.imread(face_path)
    blank = os.path.join(out, "no_face.png")
    cv2.imwrite(blank, np.full((256, 256, 3), 128, np.uint8))
    frames_dir = os.path.join(out, "frames")
    os.makedirs(frames_dir, exist_ok=True)
    frames = [face] * 8 + [cv2.flip(face, 1)] * 8
    for i, f in enumerate(frames):
        cv2.imwrite(os.path.join(frames_dir, f"f{i:03d}.png"), f)
    video = os.path.join(out, "performance.avi")
    wr = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 24, (face.shape[1], face.shape[0]))
    for f in frames:
        wr.write(f)
    wr.release()
    return {"sample_face": face_path, "blank": blank, "frames": frames_dir, "video": video}


def backend_mounts(python: str) -> list[str]:
    """The folders the backend's interpreter needs: its virtual environment and its base installation."""
    venv = os.path.dirname(os.path.dirname(os.path.abspath(python)))
    base = subprocess.run([python, "-c", "import sys; print(sys.base_prefix)"], capture_output=True, text=True)
    return [venv, os.path.realpath(base.stdout.strip())]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chroot", default=os.environ.get("DEEPEXPR_CHROOT", os.path.join(ROOT, "build", "trixie")))
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "real-window"))
    ap.add_argument("--docs", default="", help="copy the screenshots into this folder (e.g. docs/extension)")
    ap.add_argument("--mirror", default=MIRROR)
    ap.add_argument(
        "--backend-python",
        default=os.environ.get("DEEPEXPR_BACKEND_PYTHON") or os.path.join(ROOT, ".venv", "bin", "python"),
    )
    ap.add_argument("--timeout", type=int, default=1200, help="seconds Blender may run")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("the real-window tier needs root (chroot, mounts): run it with sudo")
    root, out = os.path.abspath(args.chroot), os.path.abspath(args.out)
    ensure_chroot(root, args.mirror)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from build_extension import build

    cfg = {
        "zip": build(os.path.join(out, "dist")),
        "backend_python": os.path.abspath(args.backend_python),
        "out": out,
        "framebuffer": "/tmp/deepexpr-rw-fb/Xvfb_screen0",
        **make_inputs(out),
    }
    config = os.path.join(out, "config.json")
    json.dump(cfg, open(config, "w"), indent=1)
    env = {
        "HOME": "/tmp/deepexpr-rw-home",
        "DISPLAY": ":77",
        "LIBGL_ALWAYS_SOFTWARE": "1",
        "PYTHONPATH": ROOT,  # for the backend child (Blender itself ignores PYTHONPATH)
        "DEEPEXPR_RW_CONFIG": config,
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    }
    inner = "\n".join(
        [
            "rm -rf /tmp/deepexpr-rw-home /tmp/deepexpr-rw-fb && mkdir -p /tmp/deepexpr-rw-home /tmp/deepexpr-rw-fb",
            " ".join(f"export {k}={shlex.quote(v)};" for k, v in env.items()),
            "Xvfb :77 -screen 0 1920x1200x24 -fbdir /tmp/deepexpr-rw-fb -nolisten tcp >/dev/null 2>&1 &",
            "XPID=$!; sleep 2",
            f"timeout {args.timeout} blender --factory-startup --enable-event-simulate"
            f" --python {shlex.quote(ROOT)}/tools/real_window_driver.py"
            f" > {shlex.quote(out)}/blender.log 2>&1; RC=$?",
            "kill $XPID; exit $RC",
        ]
    )
    binds = sorted({ROOT, out, *backend_mounts(cfg["backend_python"])}, key=len)
    rc = in_chroot(root, inner, binds)
    print(f"Blender exited with {rc}; log: {out}/blender.log", flush=True)
    env_test = {**os.environ, "DEEPEXPR_REAL_WINDOW": out, "PYTHONPATH": ROOT}
    test = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/test_real_window.py"], cwd=ROOT, env=env_test)
    if args.docs:
        docs_images(out, args.docs)
    raise SystemExit(rc or test.returncode)


def docs_images(out: str, docs: str) -> None:
    """Screenshots of a run, cropped for the docs: the sidebar, the review dialog, whole windows at half size."""
    import cv2
    import numpy as np

    result = json.load(open(os.path.join(out, "result.json")))
    shots = {s["checks"].get("shot", "")[:-4]: s for s in result["steps"] if s["checks"].get("shot")}
    shots.update({s["checks"]["progress_shot"][:-4]: s for s in result["steps"] if s["checks"].get("progress_shot")})
    os.makedirs(docs, exist_ok=True)
    for name, step in shots.items():
        img = cv2.imread(os.path.join(out, f"{name}.png"))
        h, w = img.shape[:2]
        if name in SIDEBAR_SHOTS:
            x, y, sw, sh = step["sidebar"]
            cv2.imwrite(os.path.join(docs, f"{name}.png"), img[max(y, 0) : y + sh, max(x, 0) : x + sw])
        elif name == "rig_poses":  # the dialog: where this shot differs from the one just before it
            before = cv2.imread(os.path.join(out, "rig_before.png"))
            changed = (cv2.absdiff(img, before).max(axis=2) > 12)[: h - 30]  # not the status bar
            ys, xs = changed.nonzero()
            y0, y1 = max(int(np.percentile(ys, 0.5)) - 10, 0), int(np.percentile(ys, 99.5)) + 10
            x0, x1 = max(int(np.percentile(xs, 0.5)) - 10, 0), int(np.percentile(xs, 99.5)) + 10
            cv2.imwrite(os.path.join(docs, f"{name}.png"), img[y0:y1, x0:x1])
        elif name in WINDOW_SHOTS:
            half = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
            cv2.imwrite(os.path.join(docs, f"{name}.jpg"), half, [cv2.IMWRITE_JPEG_QUALITY, 88])


if __name__ == "__main__":
    main()
