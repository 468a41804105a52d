"""The feed table: validation, canonical form and routing keys, without sockets."""

import pytest

from hyperliquid_ws.feeds import FEED_OF_CHANNEL, FEEDS, canonical, key_of, lenient_canonical

USER = "0x" + "Ab" * 20


@pytest.mark.parametrize(
    ("subscription", "complaint"),
    [
        ("trades", "is a dict"),
        ({"coin": "SOL"}, "unknown subscription type None"),
        ({"type": "trade", "coin": "SOL"}, "known types: "),
        ({"type": "trades"}, "trades needs 'coin'"),
        ({"type": "trades", "coin": ""}, "non-empty string"),
        ({"type": "trades", "coin": 7}, "non-empty string"),
        ({"type": "candle", "coin": "BTC", "interval": "2m"}, "1m, 3m, 5m"),
        ({"type": "userFills", "user": "0x1234"}, "40 hex digits"),
        ({"type": "userFills", "user": "0x" + "g" * 40}, "40 hex digits"),
        ({"type": "userFills", "user": USER, "aggregateByTime": "yes"}, "true or false"),
        ({"type": "l2Book", "coin": "BTC", "nSigFigs": 6}, "2, 3, 4, 5 or None"),
        ({"type": "l2Book", "coin": "BTC", "nSigFigs": True}, "2, 3, 4, 5 or None"),
        ({"type": "l2Book", "coin": "BTC", "nSigFigs": 4, "mantissa": 2}, "only with nSigFigs=5"),
        ({"type": "trades", "coin": "SOL", "user": USER}, "does not take 'user'"),
        ({"type": "allMids", "dex": 3}, "'dex' as a string"),
    ],
)
def test_bad_subscriptions_say_what_is_wrong_and_what_is_allowed(subscription, complaint):
    with pytest.raises(ValueError, match=None) as caught:
        canonical(subscription)
    assert complaint in str(caught.value)


def test_canonical_form_drops_defaults_and_lowercases_users():
    _, form = canonical({"type": "l2Book", "coin": "BTC", "nSigFigs": None, "mantissa": None})
    assert form == {"type": "l2Book", "coin": "BTC"}
    _, form = canonical({"type": "userFills", "user": USER, "aggregateByTime": False})
    assert form == {"type": "userFills", "user": USER.lower()}


def test_canonical_never_mutates_the_callers_dict():
    original = {"type": "userFills", "user": USER}
    canonical(original)
    assert original == {"type": "userFills", "user": USER}


def test_server_echo_matches_the_request_whatever_the_key_order_and_defaults():
    _, asked = canonical({"type": "candle", "coin": "HYPE", "interval": "1d"})
    echo = {"type": "candle", "interval": "1d", "coin": "HYPE"}
    assert key_of(lenient_canonical(echo)) == key_of(asked)
    _, asked = canonical({"type": "l2Book", "coin": "ETH"})
    echo = {"type": "l2Book", "coin": "ETH", "nSigFigs": None, "mantissa": None}
    assert key_of(lenient_canonical(echo)) == key_of(asked)


def test_unknown_types_pass_only_when_asked():
    with pytest.raises(ValueError):
        canonical({"type": "brandNewFeed", "x": 1})
    feed, form = canonical({"type": "brandNewFeed", "x": 1}, allow_unknown=True)
    assert feed.channels == ("brandNewFeed",) and form == {"type": "brandNewFeed", "x": 1}


def test_channel_names_that_differ_from_the_type_map_to_the_right_feed():
    assert FEED_OF_CHANNEL["user"].type == "userEvents"
    assert FEED_OF_CHANNEL["activeSpotAssetCtx"].type == "activeAssetCtx"
    assert FEED_OF_CHANNEL["activeAssetCtx"].type == "activeAssetCtx"


# A subscription and a frame of its data must produce the same route key.
ROUTED = [
    ({"type": "allMids"}, "allMids", {"mids": {"BTC": "1"}}),
    ({"type": "allMids", "dex": "xyz"}, "allMids", {"mids": {}, "dex": "xyz"}),
    ({"type": "candle", "coin": "BTC", "interval": "1m"}, "candle", {"s": "BTC", "i": "1m", "t": 1}),
    ({"type": "l2Book", "coin": "ETH"}, "l2Book", {"coin": "ETH", "time": 1, "levels": [[], []]}),
    ({"type": "l2Book", "coin": "ETH", "fast": True}, "l2Book", {"coin": "ETH", "fast": True}),
    ({"type": "trades", "coin": "SOL"}, "trades", [{"coin": "SOL", "tid": 1}]),
    ({"type": "userFills", "user": USER}, "userFills", {"user": USER.lower(), "fills": []}),
    ({"type": "webData3", "user": USER}, "webData3", {"userState": {"user": USER.lower()}}),
    ({"type": "clearinghouseState", "user": USER}, "clearinghouseState", {"user": USER.lower(), "dex": ""}),
    ({"type": "openOrders", "user": USER, "dex": "xyz"}, "openOrders", {"user": USER.lower(), "dex": "xyz"}),
    ({"type": "activeAssetCtx", "coin": "@1"}, "activeSpotAssetCtx", {"coin": "@1", "ctx": {}}),
    (
        {"type": "activeAssetData", "user": USER, "coin": "BTC"},
        "activeAssetData",
        {"user": USER.lower(), "coin": "BTC"},
    ),
    ({"type": "userEvents", "user": USER}, "user", {"fills": []}),
    ({"type": "assetCtxs"}, "assetCtxs", {"dex": "", "ctxs": []}),
]


@pytest.mark.parametrize(("subscription", "channel", "data"), ROUTED)
def test_frames_route_to_the_subscription_they_belong_to(subscription, channel, data):
    feed, form = canonical(subscription)
    frame_feed = FEED_OF_CHANNEL[channel]
    assert frame_feed is feed
    assert (frame_feed.type, frame_feed.frame_route(data)) == feed.route_of(form)


def test_every_documented_type_is_known():
    documented = {
        "allMids", "notification", "webData2", "webData3", "twapStates", "clearinghouseState",
        "openOrders", "candle", "l2Book", "trades", "orderUpdates", "userEvents", "userFills",
        "userFundings", "userNonFundingLedgerUpdates", "activeAssetCtx", "activeAssetData",
        "userTwapSliceFills", "userTwapHistory", "userHistoricalOrders", "bbo", "spotState",
        "allDexsClearinghouseState", "allDexsAssetCtxs", "assetCtxs", "spotAssetCtxs",
        "fastAssetCtxs", "outcomeMetaUpdates",
    }
    assert documented <= set(FEEDS)
