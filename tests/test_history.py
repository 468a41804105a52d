"""Dedupe of resubscribe snapshots and backfills, without sockets."""

from hyperliquid_ws.history import SHAPES, CandleTracker, Tracker


def fill(tid, time, oid=1):
    return {"coin": "BTC", "px": "1", "sz": "1", "time": time, "tid": tid, "oid": oid, "hash": f"0x{tid:064x}"}


def test_the_first_snapshot_passes_as_it_is():
    tracker = Tracker(SHAPES["userFills"])
    data = {"isSnapshot": True, "user": "0xa", "fills": [fill(1, 10), fill(2, 11)]}
    assert tracker.admit(data) == (True, data)


def test_a_later_snapshot_delivers_only_what_is_new():
    tracker = Tracker(SHAPES["userFills"])
    tracker.admit({"isSnapshot": True, "user": "0xa", "fills": [fill(1, 10)]})
    tracker.admit({"user": "0xa", "fills": [fill(2, 11)]})
    again = {"isSnapshot": True, "user": "0xa", "fills": [fill(1, 10), fill(2, 11), fill(3, 12)]}
    deliver, data = tracker.admit(again)
    assert deliver and data == {"isSnapshot": True, "user": "0xa", "fills": [fill(3, 12)]}
    assert again["fills"] == [fill(1, 10), fill(2, 11), fill(3, 12)]  # the original is untouched
    assert tracker.admit(again) == (False, again)
    assert tracker.duplicates == 2 + 3


def test_a_bounded_memory_treats_forgotten_history_as_seen():
    tracker = Tracker(SHAPES["trades"], memory=3)
    trades = [{"coin": "SOL", "tid": n, "time": 100 + n} for n in range(5)]
    tracker.admit(trades)
    assert tracker.horizon == 101
    deliver, data = tracker.admit([*trades, {"coin": "SOL", "tid": 9, "time": 200}])
    # 100 is older than the horizon: seen. 101 is at it: passes again (never lost).
    assert deliver and data == [trades[1], {"coin": "SOL", "tid": 9, "time": 200}]


def test_many_items_sharing_one_time_are_never_dropped():
    tracker = Tracker(SHAPES["trades"], memory=4)
    burst = [{"coin": "SOL", "tid": n, "time": 500} for n in range(10)]
    assert tracker.admit(burst) == (True, burst)
    later = [{"coin": "SOL", "tid": n, "time": 500} for n in range(10, 20)]
    assert tracker.admit(later) == (True, later)


def test_user_events_funding_and_fills_are_deduplicated_and_others_pass():
    tracker = Tracker(SHAPES["userEvents"])
    funding = {"funding": {"time": 5, "coin": "ETH", "usdc": "-1", "szi": "1", "fundingRate": "0.1", "nSamples": 24}}
    assert tracker.admit(funding) == (True, funding)
    assert tracker.admit(funding)[0] is False
    cancel = {"nonUserCancel": [{"coin": "ETH", "oid": 3}]}
    assert tracker.admit(cancel) == (True, cancel)
    assert tracker.admit(cancel) == (True, cancel)


def test_unreadable_items_are_delivered_rather_than_lost():
    tracker = Tracker(SHAPES["userFills"])
    odd = {"user": "0xa", "fills": [{"coin": "BTC"}]}
    assert tracker.admit(odd) == (True, odd)
    assert tracker.admit(odd) == (True, odd)


def test_order_updates_differ_by_status():
    tracker = Tracker(SHAPES["orderUpdates"])
    opened = [{"order": {"oid": 1}, "status": "open", "statusTimestamp": 1}]
    filled = [{"order": {"oid": 1}, "status": "filled", "statusTimestamp": 2}]
    assert tracker.admit(opened)[0] and tracker.admit(filled)[0]
    assert tracker.admit(opened + filled)[0] is False


def test_candles_live_always_pass_and_backfill_only_when_new_or_changed():
    tracker = CandleTracker()
    candle = {"t": 60, "c": "1"}
    assert tracker.admit(candle)[0] and tracker.admit({"t": 60, "c": "2"})[0]
    assert tracker.admit({"t": 60, "c": "2"}, backfill=True)[0] is False
    assert tracker.admit({"t": 60, "c": "3"}, backfill=True)[0]
    assert tracker.admit({"t": 0, "c": "3"}, backfill=True)[0] is False
    assert tracker.admit({"t": 120, "c": "3"}, backfill=True)[0]
    assert tracker.last_time == 120
