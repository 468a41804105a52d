"""The stdlib fast path parses exactly what json.loads parses, and refuses what it refuses."""

import json

import pytest

from hyperliquid_ws.router import _stdlib_loads

SAMPLES = [
    '{"channel":"trades","data":[{"coin":"BTC","px":"1.5","tid":1}]}',
    '{"channel":"notification","data":{"notification":"Achet\\u00e9 0.1 BTC \\ud83d\\ude80"}}',
    '{"channel":"x","data":{"nested":[1,2.5,-3e5,true,false,null,"é ü 中"]}}',
    '{ "channel" : "pong" }',
]


@pytest.mark.parametrize("text", SAMPLES)
def test_same_result_as_json_loads(text):
    assert _stdlib_loads(text.encode()) == json.loads(text)


@pytest.mark.parametrize("payload", [b"", b"Websocket connection established.", b'{"a":', b"\xff\xfe{}"])
def test_invalid_input_raises_a_value_error_or_stop_iteration(payload):
    with pytest.raises((ValueError, StopIteration)):
        _stdlib_loads(payload)


def test_the_fast_parser_parses_what_orjson_refuses_but_json_allows():
    """An integer beyond a double's range makes orjson refuse the frame; the client then
    parses it with the stdlib (exact) rather than drop it. Invalid JSON still raises."""
    pytest.importorskip("orjson")
    from hyperliquid_ws import router

    huge = b'{"channel":"trades","data":[{"tid":1,"time":1' + b"0" * 400 + b"}]}"
    assert router.loads(huge)["data"][0]["time"] == 10**400
    with pytest.raises(ValueError):
        router.loads(b'{"channel":')
