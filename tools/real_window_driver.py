"""Runs inside a real Blender window (``blender --python tools/real_window_driver.py``, started by
``tools/real_window.py`` under Xvfb): installs the extension zip and goes through the workflow from Blender's
own event loop (timers fire, modal operators get their events), taking screenshots of the X framebuffer.

Everything it needs comes from the JSON file named by ``$DEEPEXPR_RW_CONFIG``; it writes ``result.json`` (each
step: ok, what it checked, the panel's state, the screenshot and the sidebar's rectangle) and PNG screenshots
into the config's ``out`` folder, then quits. Runs on Blender's own Python (3.11+), stdlib + numpy only.
"""

import json
import os
import struct
import sys
import time
import traceback
import zlib

import bpy
import numpy as np

CFG = json.load(open(os.environ["DEEPEXPR_RW_CONFIG"]))
OUT = CFG["out"]
MODULE = "bl_ext.user_default.deepexpr_blender"
RESULT = {"blender": bpy.app.version_string, "steps": [], "started": time.time()}
STEP_TIMEOUT = 300.0

bpy.context.preferences.view.show_splash = False


def log(text):
    print(f"=== deepexpr-rw: {text}", flush=True)


# ---------------------------------------------------------------------------------------- screenshots
def _png(path, rgb):
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 6)))
        f.write(chunk(b"IEND", b""))


def screenshot(name):
    """The X framebuffer (Xvfb -fbdir, XWD format) as out/<name>.png, after a full redraw."""
    for _ in range(6):  # let panel animations (sub-panels sliding to their new places) settle
        bpy.ops.wm.redraw_timer(type="DRAW_WIN_SWAP", iterations=1)
        time.sleep(0.1)
    data = open(CFG["framebuffer"], "rb").read()
    hdr = struct.unpack(">25I", data[:100])
    header_size, w, h, bytes_per_line, ncolors = hdr[0], hdr[4], hdr[5], hdr[12], hdr[19]
    off = header_size + ncolors * 12
    px = np.frombuffer(data[off : off + bytes_per_line * h], np.uint8).reshape(h, bytes_per_line)
    bgrx = px[:, : w * 4].reshape(h, w, 4)
    path = os.path.join(OUT, f"{name}.png")
    _png(path, np.ascontiguousarray(bgrx[:, :, [2, 1, 0]]))
    return os.path.basename(path)


# ---------------------------------------------------------------------------------------- the UI
def window():
    return bpy.context.window_manager.windows[0]


def area(kind):
    for a in window().screen.areas:
        if a.type == kind:
            return a
    raise RuntimeError(f"no {kind} area")


def main_area():
    """The biggest area of the screen (the 3D viewport at start; switched to the Sequencer and back)."""
    return max(window().screen.areas, key=lambda a: a.width * a.height)


def override(a):
    region = next(r for r in a.regions if r.type == "WINDOW")
    return bpy.context.temp_override(window=window(), area=a, region=region)


def show_sidebar(a):
    """Open the area's sidebar and bring the DeepExpr tab to the front; returns a condition for the step
    loop. Blender 4.3 has no API to pick a tab (``Region.active_panel_category`` is read-only there), so the
    condition scrolls the tabs with Ctrl+Wheel over the sidebar (``--enable-event-simulate``) until it shows."""
    a.spaces.active.show_region_ui = True
    a.tag_redraw()

    def on_deepexpr():
        ui = next(r for r in a.regions if r.type == "UI")
        if ui.active_panel_category == "DeepExpr":
            return True
        try:
            ui.active_panel_category = "DeepExpr"
            return False
        except AttributeError:
            pass
        x, y = ui.x + ui.width // 2, ui.y + ui.height // 2
        win = window()
        win.event_simulate(type="MOUSEMOVE", value="NOTHING", x=x, y=y)
        win.event_simulate(type="WHEELDOWNMOUSE", value="PRESS", x=x, y=y, ctrl=True)
        return False

    return on_deepexpr


def sidebar_rect(a):
    """(x, y, width, height) of the area's sidebar in screenshot pixels (top-left origin)."""
    ui = next(r for r in a.regions if r.type == "UI")
    h = window().height
    return [ui.x, h - (ui.y + ui.height), ui.width, ui.height]


def props():
    return bpy.context.scene.deepexpr


def panel_state():
    p = props()
    from importlib import import_module

    backend = import_module(MODULE + ".status").backend
    return {
        "busy": p.busy,
        "status": p.status,
        "status_kind": p.status_kind,
        "error": p.error,
        "backend": backend["text"],
        "backend_error": backend["error"],
        "candidates": len(p.candidates),
    }


def key_frames(id_data):
    from importlib import import_module

    compat = import_module(MODULE + ".compat")
    return {
        fc.data_path: [tuple(round(v, 4) for v in k.co) for k in fc.keyframe_points]
        for fc in compat.action_fcurves(id_data)
    }


# ---------------------------------------------------------------------------------------- steps
STEPS = []


def step(fn):
    STEPS.append(fn)
    return fn


def not_busy():
    return not props().busy


@step
def install():
    res = bpy.ops.extensions.package_install_files(filepath=CFG["zip"], repo="user_default", enable_on_install=True)
    assert res == {"FINISHED"}, res
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.python, prefs.device, prefs.threads = CFG["backend_python"], "cpu", 1
    bpy.ops.deepexpr.check_backend()
    from importlib import import_module

    backend = import_module(MODULE + ".status").backend
    return lambda: backend["info"] is not None or backend["error"], {"installed": True}


@step
def sidebar():
    return show_sidebar(main_area()), {}


@step
def add_character():
    a = main_area()
    with override(a):
        assert bpy.ops.deepexpr.add_character(character="pip") == {"FINISHED"}
        bpy.ops.view3d.view_all()
    obj = bpy.context.view_layer.objects.active
    cube = bpy.data.objects.get("Cube")
    checks = {
        "target_is_new_character": props().target == obj and obj.name.startswith("pip"),
        "selected_and_active": obj.select_get() and bpy.context.view_layer.objects.active == obj,
        "clear_of_cube": cube is None or obj.location.x > 1.0,
    }
    return None, checks


@step
def open_rig_dialog():
    """Build library from rig: the review dialog lists the poses found in the toon (its AU keys)."""
    a = main_area()
    x, y = a.x + a.width // 2, a.y + a.height // 2
    window().event_simulate(type="MOUSEMOVE", value="NOTHING", x=x, y=y)
    bpy.context.view_layer.objects.active = props().target
    before = screenshot("rig_before")  # what changes between the two shots is the dialog
    with override(a):
        bpy.ops.deepexpr.review_rig_poses("INVOKE_DEFAULT")
    return after(2.0), {"before_dialog": before}


@step
def confirm_rig_dialog():
    from importlib import import_module

    out = import_module(MODULE + ".library_from_rig.ops").library_folder(props().target)
    shot = screenshot("rig_poses")
    win = window()
    win.event_simulate(type="RET", value="PRESS")
    win.event_simulate(type="RET", value="RELEASE")
    built = os.path.join(out, "library.json")
    checks = {"shot": shot}

    def building():
        p = props()
        if "progress_shot" not in checks and p.busy and p.job == "library" and p.progress >= 0.25:
            checks["progress_shot"] = screenshot("library_progress")  # real progress, Esc offered
            checks["progress_shown"] = p.progress_known and p.cancellable and "pose" in p.status
        return not p.busy and os.path.isfile(built) and p.library == "CUSTOM"

    return building, checks


@step
def after_rig_library():
    p = props()
    entries = json.load(open(os.path.join(p.library_path, "library.json")))["entries"]
    labels = {e.get("label") for e in entries}
    return None, {"rig_library": len(entries) >= 7 and {"joy", "anger", "neutral"} <= labels}


@step
def calibrate():
    p = props()
    p.source, p.image_path = "IMAGE", CFG["sample_face"]
    with override(main_area()):
        assert bpy.ops.deepexpr.capture_neutral() == {"FINISHED"}
    return not_busy, {}


@step
def after_calibrate():
    p = props()
    return None, {"neutral_stored": bool(p.neutral_points) and p.status_kind == "OK"}


@step
def capture():
    p = props()
    p.source, p.image_path = "IMAGE", CFG["sample_face"]
    with override(main_area()):
        assert bpy.ops.deepexpr.capture() == {"FINISHED"}
    return not_busy, {}


@step
def after_capture():
    p = props()
    return None, {"face_found": bool(p.expression) and p.status_kind == "OK", "shot": screenshot("capture")}


@step
def find_poses():
    with override(main_area()):
        bpy.ops.deepexpr.find_poses("INVOKE_DEFAULT")
    return not_busy, {}


@step
def after_find():
    p = props()
    return None, {"candidates": len(p.candidates) > 0 and p.status_kind == "OK", "shot": screenshot("poses")}


@step
def key_pose():
    bpy.context.scene.frame_set(1)
    with override(main_area()):
        assert bpy.ops.deepexpr.key_pose(index=0) == {"FINISHED"}
    keys = key_frames(props().target.data.shape_keys)
    return None, {"keyed_at_1": bool(keys) and all(pts[0][0] == 1.0 for pts in keys.values())}


@step
def batch_3d():
    target = props().target
    kb = target.data.shape_keys.key_blocks["jaw_drop"]
    kb.value = 0.77
    kb.keyframe_insert("value", frame=9)  # inside the batch's range (16 frames from frame 1)
    with override(main_area()):
        bpy.ops.ed.undo_push(message="DeepExpr real-window: before the batch")
    p = props()
    p.batch_input, p.batch_step, p.batch_min_hold = CFG["frames"], 2, 2
    bpy.context.scene.frame_set(1)
    with override(main_area()):
        bpy.ops.deepexpr.batch_retrieve("INVOKE_DEFAULT")
    return not_busy, {}


@step
def after_batch_3d():
    p = props()
    target = p.target
    jaw = key_frames(target.data.shape_keys).get('key_blocks["jaw_drop"].value', [])
    checks = {
        "batch_ok": p.status_kind == "OK" and " keyed on " in p.batch_report,
        "hand_key_replaced": (9.0, 0.77) not in jaw,
        "report": p.batch_report,
        "shot": screenshot("batch"),
    }
    name = target.name
    with override(main_area()):
        bpy.ops.ed.undo()
    target = bpy.data.objects[name]
    jaw = key_frames(target.data.shape_keys).get('key_blocks["jaw_drop"].value', [])
    checks["one_undo_restores"] = (9.0, 0.77) in jaw and all(f in (1.0, 9.0) for f, _ in jaw)
    return None, checks


def after(seconds):
    t = time.time() + seconds
    return lambda: time.time() > t


@step
def to_sequencer():
    main_area().type = "SEQUENCE_EDITOR"  # its regions exist after the next redraw
    return after(1.0), {}


@step
def sequencer_sidebar():
    return show_sidebar(main_area()), {}


@step
def sequencer():
    a = main_area()
    scene = bpy.context.scene
    sed = scene.sequence_editor or scene.sequence_editor_create()
    new = (sed.strips if hasattr(sed, "strips") else sed.sequences).new_movie
    strip = new(name="performance", filepath=CFG["video"], channel=1, frame_start=30)
    sed.active_strip = strip
    scene.frame_end = 80
    with override(a):
        bpy.ops.sequencer.view_all()
        bpy.ops.deepexpr.batch_retrieve("INVOKE_DEFAULT")
    return not_busy, {}


@step
def after_sequencer_batch():
    p = props()
    frames = sorted({k[0] for pts in key_frames(p.target.data.shape_keys).values() for k in pts})
    keyed = [f for f in frames if f >= 30]
    return None, {
        "batch_from_strip": p.status_kind == "OK" and bool(keyed) and keyed[0] == 30.0,
        "report": p.batch_report,
        "shot": screenshot("sequencer_batch"),
    }


@step
def transition():
    p = props()
    p.seq_source, p.seq_mode, p.seq_expression, p.seq_frames = CFG["sample_face"], "EXPRESSION", "surprise", 8
    bpy.context.scene.frame_set(35)
    with override(main_area()):
        bpy.ops.deepexpr.generate_transition("INVOKE_DEFAULT")
    return not_busy, {}


@step
def after_transition():
    scene = bpy.context.scene
    sed = scene.sequence_editor
    strips = [s for s in (sed.strips_all if hasattr(sed, "strips_all") else sed.sequences_all) if s.type == "IMAGE"]
    ok = bool(strips) and strips[-1].channel == 2 and strips[-1].transform.scale_y > 1.0
    with override(main_area()):
        bpy.ops.sequencer.view_all()
    return None, {"strip_above_and_scaled": ok, "ok": props().status_kind == "OK", "shot": screenshot("transition")}


@step
def to_3d_view():
    main_area().type = "VIEW_3D"
    return after(1.0), {}


@step
def view3d_sidebar():
    return show_sidebar(main_area()), {}


@step
def error_path():
    a = main_area()
    p = props()
    p.image_path = CFG["blank"]
    with override(a):
        bpy.ops.deepexpr.capture()
    return not_busy, {}


@step
def after_error():
    p = props()
    with override(main_area()):
        find_disabled = not bpy.ops.deepexpr.find_poses.poll()
    return None, {
        "error_shown": p.status_kind == "ERROR" and "No face was found" in p.error,
        "stale_face_cleared": p.expression == "" and p.preview_path == "",
        "find_poses_disabled": find_disabled,
        "shot": screenshot("error"),
    }


@step
def rename_during_transition():
    p = props()
    p.seq_frames = 12
    with override(main_area()):
        bpy.ops.deepexpr.generate_transition("INVOKE_DEFAULT")
    bpy.context.scene.name = "Renamed while generating"
    return not_busy, {}


@step
def after_rename():
    with override(main_area()):
        usable = bpy.ops.deepexpr.capture.poll()
    return None, {"not_locked": not props().busy and usable, "shot": screenshot("after_rename")}


# ---------------------------------------------------------------------------------------- the loop
state = {"i": 0, "wait": None, "deadline": 0.0, "current": None}


def finish():
    RESULT["finished"] = time.time()
    RESULT["window"] = [window().width, window().height]
    with open(os.path.join(OUT, "result.json"), "w") as f:
        json.dump(RESULT, f, indent=1)
    log("done")
    bpy.ops.wm.quit_blender()


def record(name, checks, error=None):
    entry = {"step": name, "ok": error is None, "checks": checks or {}, "error": error}
    try:
        entry["panel"] = panel_state()
        entry["sidebar"] = sidebar_rect(main_area())
    except Exception:  # before the add-on is installed
        pass
    RESULT["steps"].append(entry)
    log(f"{name}: {'ok' if error is None else 'FAILED ' + error.splitlines()[-1]}")


def tick():
    try:
        if state["wait"] is not None:
            cond = state["wait"]
            if not cond():
                if time.time() > state["deadline"]:
                    name, checks = state["current"]
                    state["wait"] = None
                    record(name, checks, f"timed out after {STEP_TIMEOUT:.0f} s")
                    finish()
                    return None
                return 0.2
            state["wait"] = None
            name, checks = state["current"]
            record(name, checks)
        if state["i"] >= len(STEPS):
            finish()
            return None
        fn = STEPS[state["i"]]
        state["i"] += 1
        log(f"step {fn.__name__}")
        cond, checks = fn()
        if cond is None:
            record(fn.__name__, checks)
        else:
            state["wait"], state["deadline"], state["current"] = cond, time.time() + STEP_TIMEOUT, (fn.__name__, checks)
        return 0.5
    except Exception:
        record(STEPS[state["i"] - 1].__name__ if state["i"] else "start", {}, traceback.format_exc())
        finish()
        return None


log(f"Blender {bpy.app.version_string}, Python {sys.version.split()[0]}")
bpy.app.timers.register(tick, first_interval=3.0)
