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
