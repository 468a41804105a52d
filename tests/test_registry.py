"""Matching acks and errors (which carry no id) to the requests they answer."""

import pytest

from hyperliquid_ws import SubscriptionError
from hyperliquid_ws.feeds import canonical
from hyperliquid_ws.registry import Registry


class Owner:
    def unsubscribe(self, subscription):
        pass


def add(registry, subscription, callback=print):
    feed, form = canonical(subscription)
    return registry.add(Owner(), feed, form, dict(subscription), callback)


@pytest.fixture
def registry():
    registry = Registry()
    registry.claim_all(1)  # a live link, generation 1
    return registry


def test_ack_with_server_defaults_and_key_order_settles_the_request(registry):
    handle, _ = add(registry, {"type": "l2Book", "coin": "ETH"})
    assert registry.claim(handle._entry) == 1
    entry = registry.acknowledged(
        "subscribe", {"type": "l2Book", "coin": "ETH", "nSigFigs": None, "mantissa": None}
    )
    assert entry is handle._entry and handle.active
    assert handle.wait(0) is handle


def test_ack_with_an_extra_field_matches_the_most_specific_request(registry):
    plain, _ = add(registry, {"type": "allMids"})
    dexed, _ = add(registry, {"type": "allMids", "dex": "xyz"})
    registry.claim(plain._entry)
    registry.claim(dexed._entry)
    assert registry.acknowledged("subscribe", {"type": "allMids", "dex": "xyz", "new": 1}) is dexed._entry


def test_invalid_subscription_error_fails_only_the_request_it_names(registry):
    good, _ = add(registry, {"type": "trades", "coin": "SOL"})
    bad, _ = add(registry, {"type": "candle", "coin": "TST2", "interval": "1d"})
    registry.claim(good._entry)
    registry.claim(bad._entry)
    entry, method = registry.refused('Invalid subscription {"type":"candle","interval":"1d","coin":"TST2"}')
    assert (entry, method) == (bad._entry, "subscribe")
    with pytest.raises(SubscriptionError, match="Invalid subscription") as caught:
        bad.wait(0)
    assert caught.value.server_text.startswith("Invalid subscription")
    assert good.error is None and not good._entry.settled.is_set()


def test_limit_errors_without_echo_go_to_the_oldest_unanswered_subscribe(registry):
    first, _ = add(registry, {"type": "trades", "coin": "SOL"})
    second, _ = add(registry, {"type": "trades", "coin": "ETH"})
    registry.claim(first._entry)
    registry.claim(second._entry)
    registry.acknowledged("subscribe", {"type": "trades", "coin": "SOL"})
    entry, _ = registry.refused("Cannot subscribe to more than 1000 channels.")
    assert entry is second._entry
    assert "1000 channels" in str(second.error)


def test_unattributable_errors_are_returned_as_such(registry):
    assert registry.refused("Cannot send more than 2000 messages per minute.") == (None, None)
    assert registry.refused("something new") == (None, None)


def test_two_feeds_that_look_alike_on_the_wire_are_refused(registry):
    add(registry, {"type": "orderUpdates", "user": "0x" + "1" * 40})
    with pytest.raises(SubscriptionError, match="cannot share a connection"):
        add(registry, {"type": "orderUpdates", "user": "0x" + "2" * 40})
    add(registry, {"type": "l2Book", "coin": "BTC", "nSigFigs": 5})
    with pytest.raises(SubscriptionError, match="cannot share a connection"):
        add(registry, {"type": "l2Book", "coin": "BTC"})


def test_same_feed_twice_shares_one_entry_and_the_last_handle_unsubscribes(registry):
    one, new_one = add(registry, {"type": "trades", "coin": "SOL"})
    two, new_two = add(registry, {"type": "trades", "coin": "SOL"}, callback=repr)
    assert new_one and not new_two and one._entry is two._entry
    registry.claim(one._entry)
    assert registry.remove(one) == (None, 0)
    assert registry.remove(two) == (two._entry, 1)
    assert registry.remove(two) == (None, 0)  # idempotent


def test_a_subscription_is_sent_once_per_connection(registry):
    handle, _ = add(registry, {"type": "bbo", "coin": "BTC"})
    assert registry.claim(handle._entry) == 1
    assert registry.claim(handle._entry) == 0
    registry.connection_lost()
    assert registry.claim(handle._entry) == 0  # no link: the next connect replays it
    assert registry.claim_all(2) == [handle._entry]
