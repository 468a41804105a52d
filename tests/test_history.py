"""Dedupe of resubscribe snapshots and backfills, without sockets."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperliquid_ws.history import SHAPES, CandleTracker, Tracker, TradesTracker


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


_odd = st.one_of(st.none(), st.text(max_size=2), st.booleans())
_trade = st.fixed_dictionaries({"tid": st.integers(0, 6) | _odd, "time": st.integers(0, 30) | _odd})
_trades_data = st.one_of(st.lists(_trade, min_size=1, max_size=1), st.lists(_trade, max_size=3), st.none())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_trades_data, st.booleans()), max_size=60), st.integers(min_value=1, max_value=8))
def test_the_trades_fast_path_judges_exactly_as_the_generic_tracker(frames, memory):
    """TradesTracker writes out the common frame; on any sequence of frames (odd types
    included) it must deliver, filter and remember exactly what the generic one does."""
    fast, generic = TradesTracker(memory), Tracker(SHAPES["trades"], memory)
    for data, backfill in frames:
        assert fast.admit(data, backfill=backfill) == generic.admit(data, backfill=backfill)
        assert (fast.horizon, fast.last_time, fast.duplicates) == (generic.horizon, generic.last_time,
                                                                   generic.duplicates)


@st.composite
def _live_then_backfill(draw):
    """What a trades feed sees: frames in time order (several trades at one time, some
    frames repeated), a backfill of older trades now and then, an odd frame rarely."""
    time, tid, frames, sent = 0, 0, [], []
    for _ in range(draw(st.integers(0, 80))):
        step = draw(st.sampled_from(["live"] * 12 + ["again", "backfill", "odd"]))
        if step == "live":
            trades = []
            for _ in range(draw(st.integers(1, 3))):
                time += draw(st.integers(0, 2))
                tid += 1
                trades.append({"coin": "BTC", "tid": tid, "time": time})
            sent.extend(trades)
            frames.append((trades, False))
        elif step == "again" and frames:
            frames.append(draw(st.sampled_from(frames[-5:])))
        elif step == "backfill" and sent:
            start = draw(st.integers(0, len(sent) - 1))
            frames.append((sent[start:start + draw(st.integers(1, 6))], True))
        elif step == "odd":
            frames.append(draw(st.tuples(_trades_data, st.booleans())))
    return frames


@settings(max_examples=200, deadline=None)
@given(_live_then_backfill(), st.integers(min_value=1, max_value=8), st.data())
def test_trades_in_time_order_are_judged_exactly_as_the_generic_tracker(frames, memory, data):
    """The in-order path (no generic memory kept per trade, caught up when anything else
    comes) delivers, filters and remembers what the generic tracker does, over runs long
    enough for its ring to go round (more than the memory); the horizon, read at random
    moments (reading it catches up), is always the generic one."""
    fast, generic = TradesTracker(memory), Tracker(SHAPES["trades"], memory)
    for frame, backfill in frames:
        assert fast.admit(frame, backfill=backfill) == generic.admit(frame, backfill=backfill)
        assert (fast.last_time, fast.duplicates) == (generic.last_time, generic.duplicates)
        if data.draw(st.integers(0, 15)) == 0:
            assert fast.horizon == generic.horizon
    assert fast.horizon == generic.horizon


def test_the_horizon_is_the_generic_one_however_far_the_in_order_ring_went_round():
    for memory in (1, 2, 3, 5):
        for count in range(1, 6 * memory + 2):
            fast, generic = TradesTracker(memory), Tracker(SHAPES["trades"], memory)
            for n in range(count):
                trade = [{"coin": "BTC", "tid": n, "time": 10 * n}]
                assert fast.admit(trade) == generic.admit(trade)
            assert fast.horizon == generic.horizon, (memory, count)
            late = [{"coin": "BTC", "tid": 99, "time": generic.horizon or 0}, {"coin": "BTC", "tid": 98, "time": 1}]
            assert fast.admit(late, backfill=True) == generic.admit(late, backfill=True)


def test_a_live_trades_feed_keeps_a_fixed_memory_however_long_it_runs():
    """A thousand trades feeds, each running for days: each remembers ``memory`` trades
    (a key of two ints, ~130 bytes) and no more, at any moment of the run."""
    import tracemalloc

    memory = 64
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracker = TradesTracker(memory)
        most = 0
        for n in range(20 * memory):
            assert tracker.admit([{"coin": "BTC", "tid": 10**15 + n, "time": 1_700_000_000_000 + n}])[0]
            most = max(most, tracemalloc.get_traced_memory()[0] - start)
    finally:
        tracemalloc.stop()
    assert most < 200 * memory, f"{most} bytes at most for {memory} trades remembered"


@pytest.mark.parametrize("tracker", [TradesTracker(8), Tracker(SHAPES["trades"], 8)], ids=["trades", "generic"])
def test_an_id_too_large_to_be_exact_is_never_taken_for_a_duplicate(tracker):
    """The fast extra's orjson reads integers beyond 64 bits as floats: 2**64 and 2**64 + 1
    both become 1.8446744073709552e19. Two such trades are two trades, both delivered."""
    first, second = ([{"coin": "BTC", "tid": float(tid), "time": 5}] for tid in (2**64, 2**64 + 1))
    assert tracker.admit(first)[0] and tracker.admit(second)[0]
    exact = [{"coin": "BTC", "tid": 2**53 - 1, "time": 6}]
    assert tracker.admit(exact)[0] and not tracker.admit(exact)[0], "an exact id is still deduplicated"
