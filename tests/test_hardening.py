"""Issue 12, one section per numbered point: inputs a hostile or careless user sends, against the real backend
subprocess. Each reply is strict JSON with its documented code, and the server keeps serving."""

from __future__ import annotations

import json

import pytest

from deepexpr_blender.core import protocol as P

from .backend_client import BackendProcess


@pytest.fixture(scope="module")
def server(random_model):
    srv = BackendProcess("--expression-model", random_model)
    srv.initialize()
    yield srv
    assert srv.close() == 0


def strict(body: bytes) -> dict:
    """A reply body as strict JSON: UTF-8 without lone surrogates, no NaN/Infinity."""

    def no_constant(name):
        raise AssertionError(f"non-JSON constant {name} in a reply")

    text = body.decode("utf-8")  # strict: raises on invalid UTF-8
    text.encode("utf-8")  # and on lone surrogates
    msg = json.loads(text, parse_constant=no_constant)
    _no_surrogates(msg)
    return msg


def _no_surrogates(v) -> None:
    if isinstance(v, str):
        v.encode("utf-8")
    elif isinstance(v, dict):
        for k, x in v.items():
            _no_surrogates(k)
            _no_surrogates(x)
    elif isinstance(v, list):
        for x in v:
            _no_surrogates(x)


def raw(srv: BackendProcess, body: bytes) -> dict:
    """Send one framed body; return the next response (not a notification), checked as strict JSON."""
    srv.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    while True:
        frame = P.read_frame(srv.proc.stdout, 64 << 20)
        assert frame is not None, f"the backend died; stderr: {srv.stderr_tail()}"
        msg = strict(frame)
        if "method" not in msg:
            return msg


def name(resp: dict) -> str:
    assert "error" in resp, resp
    return P.ERROR_NAMES[resp["error"]["code"]]


def still_serving(srv: BackendProcess) -> None:
    resp = raw(srv, json.dumps({"jsonrpc": "2.0", "id": "alive?", "method": "detect", "params": {}}).encode())
    assert resp["id"] == "alive?" and name(resp) == "INVALID_PARAMS"


# ------------------------------------------------------------------------------------------------ point 1
@pytest.mark.parametrize(
    "body,code,reply_id",
    [
        # a string id with a lone surrogate cannot be echoed as strict JSON: an invalid request, id null
        (rb'{"jsonrpc":"2.0","id":"\udc80","method":"detect","params":{"image":"x"}}', "INVALID_REQUEST", None),
        # a path with a lone surrogate: named as invalid, not echoed raw
        (rb'{"jsonrpc":"2.0","id":1,"method":"detect","params":{"image":"/tmp/\udc80.png"}}', "INVALID_PARAMS", 1),
        (rb'{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"\ud800"}}', "INVALID_PARAMS", 2),
        (rb'{"jsonrpc":"2.0","id":3,"method":"no_such_\udc80"}', "METHOD_NOT_FOUND", 3),
        (rb'{"jsonrpc":"1.0","id":"\udc80","method":"detect"}', "INVALID_REQUEST", None),
    ],
)
def test_lone_surrogates_get_a_strict_reply(server, body, code, reply_id):
    resp = raw(server, body)
    assert name(resp) == code and resp["id"] == reply_id
    still_serving(server)


@pytest.mark.parametrize("depth", [988, 989, 990, 2000])
def test_a_deeply_nested_id_is_not_echoed(server, depth):
    nested = "[" * depth + "]" * depth
    resp = raw(server, ('{"jsonrpc":"1.0","id":%s,"method":"detect"}' % nested).encode())
    assert name(resp) in ("INVALID_REQUEST", "PARSE_ERROR") and resp["id"] is None
    still_serving(server)


def test_a_cancel_with_an_unhashable_id_does_not_stop_the_reader(server):
    for bad in ([1], {"a": 1}, None, 1.5):
        server.send(P.notification("$/cancelRequest", {"id": bad}))
    still_serving(server)


def test_every_method_survives_hostile_strings(server):
    hostile = ["\udc80", "\ud800x", "a" * 100_000, "\x00", "../../../../etc/passwd", "/proc/self/mem"]
    from backend.methods import registry

    for method in registry().names():
        for s in hostile:
            params = {k: s for k in ("image", "library", "source", "video", "op", "expression", "target", "keyframes")}
            params.update(out="/proc/deepexpr-nope/out", draw="/proc/deepexpr-nope/x.png")  # never writable
            body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).encode()
            resp = raw(server, body)
            assert resp["id"] == 7 and name(resp) != "INTERNAL_ERROR", (method, s, resp)
    still_serving(server)
