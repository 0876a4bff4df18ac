"""Framing and dispatch, fuzzed; and the add-on and backend agree on the protocol version."""

from __future__ import annotations

import io
import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepexpr_blender.core import protocol as P

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@given(st.lists(st.dictionaries(st.text(max_size=10), json_values, max_size=5), min_size=1, max_size=5))
def test_frames_round_trip(messages):
    stream = io.BytesIO(b"".join(P.encode(m) for m in messages))
    for m in messages:
        assert P.decode(P.read_frame(stream)) == json.loads(json.dumps(m))
    assert P.read_frame(stream) is None


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_garbage_never_raises_anything_but_framing_errors(data):
    stream = io.BytesIO(data)
    for _ in range(20):
        try:
            body = P.read_frame(stream, max_bytes=64)
        except P.FramingError as exc:
            if not exc.recoverable:
                return
            continue
        if body is None:
            return
        try:
            P.decode(body)
        except P.FramingError:
            pass


def _server(stdin: bytes):
    from backend.methods import registry
    from backend.server import Server

    def no_engine(options):  # the fuzz never initialises: dispatch and framing only
        raise AssertionError("engine requested")

    out = io.BytesIO()
    return Server(no_engine, registry(), io.BytesIO(stdin), out, max_message_bytes=256), out


@given(
    st.lists(
        st.one_of(
            json_values.map(lambda v: json.dumps(v).encode()),
            st.binary(max_size=80),
            st.fixed_dictionaries(
                {
                    "jsonrpc": st.sampled_from(["2.0", "1.0", 2]),
                    "id": json_values,
                    "method": st.one_of(st.text(max_size=12), json_values),
                    "params": json_values,
                }
            ).map(lambda d: json.dumps(d).encode()),
        ),
        max_size=6,
    )
)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_server_answers_every_well_framed_message_and_survives(bodies):
    """Well-framed but arbitrary bodies: each request gets one well-formed JSON-RPC answer, nothing kills the loop,
    and a valid request after the garbage is still answered."""
    final = P.encode(P.request("last", "detect", {"image": "x"}))
    stream = b"".join(b"Content-Length: %d\r\n\r\n" % len(b) + b for b in bodies) + final
    srv, out = _server(stream)
    assert srv.serve() in (0, 1)
    out.seek(0)
    replies = []
    while (body := P.read_frame(out)) is not None:
        replies.append(json.loads(body))
    for r in replies:
        assert r["jsonrpc"] == "2.0" and ("result" in r) != ("error" in r)
        if "error" in r:
            assert isinstance(r["error"]["code"], int) and r["error"]["message"]
    assert replies[-1]["id"] == "last" and replies[-1]["error"]["code"] in (P.SERVER_NOT_INITIALIZED, P.SHUTTING_DOWN)


def test_header_garbage_stops_cleanly():
    srv, out = _server(b"Content-Type: x\r\n\r\n{}")
    assert srv.serve() == 1
    out.seek(0)
    assert json.loads(P.read_frame(out))["error"]["code"] == P.PARSE_ERROR


def test_both_sides_agree_on_the_protocol_version():
    """docs/protocol.md states the version and every error code the shared module defines, and a client
    with another major version is refused (see test_server for the live check)."""
    import os

    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "protocol.md"), encoding="utf-8").read()
    assert re.search(r"Protocol version: \*\*(\S+)\*\*", doc).group(1) == P.PROTOCOL_VERSION
    table = {int(code): name for code, name in re.findall(r"^\| (-\d+) \| `([A-Z_]+)` \|", doc, flags=re.M)}
    assert table == P.ERROR_NAMES  # the error table and the code constants agree, both ways
