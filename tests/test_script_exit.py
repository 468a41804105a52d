"""How a script ends: the exit warning for forgotten subscriptions, ``close_all()`` for
notebooks, and no logging noise for an error the caller caught."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import hyperliquid_ws
from hyperliquid_ws import HyperliquidWS

from .conftest import DEADLINE, Collector, client_threads, wait_until


def run_script(body: str, base_url: str) -> subprocess.CompletedProcess[str]:
    script = "from hyperliquid_ws import HyperliquidWS, SubscriptionError\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script, base_url], capture_output=True, text=True,
                          timeout=60)


def test_a_script_that_subscribes_and_ends_warns_once_naming_the_feeds_and_run_forever(server):
    done = run_script("""
        import sys
        ws = HyperliquidWS(sys.argv[1])
        ws.subscribe({"type": "trades", "coin": "SOL"}, print)
        ws.subscribe({"type": "allMids"}, print).wait()
    """, server.base_url)
    assert done.returncode == 0, done.stderr  # the rule stays: such a script exits
    assert done.stderr.count("run_forever()") == 1, done.stderr
    assert '{"type":"trades","coin":"SOL"}' in done.stderr and '{"type":"allMids"}' in done.stderr
    assert "Traceback" not in done.stderr


def test_no_exit_warning_when_the_script_ends_in_a_traceback_or_ctrl_c(server):
    crashed = run_script("""
        import sys
        ws = HyperliquidWS(sys.argv[1])
        ws.subscribe({"type": "allMids"}, print).wait()
        raise RuntimeError("the bot's own bug")
    """, server.base_url)
    assert crashed.returncode == 1 and "the bot's own bug" in crashed.stderr
    assert "run_forever()" not in crashed.stderr, crashed.stderr

    script = "from hyperliquid_ws import HyperliquidWS\n" + textwrap.dedent("""
        import sys, threading
        ws = HyperliquidWS(sys.argv[1])
        ws.subscribe({"type": "allMids"}, lambda message: None).wait()
        print("waiting", flush=True)
        threading.Event().wait(60)  # the user's own wait, ended by Ctrl-C
    """)
    process = subprocess.Popen([sys.executable, "-c", script, server.base_url], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == "waiting\n"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert "KeyboardInterrupt" in err and "run_forever()" not in err, err


def test_no_exit_warning_after_close_or_run_forever_or_without_subscriptions(server):
    closed = run_script("""
        import sys
        ws = HyperliquidWS(sys.argv[1])
        ws.subscribe({"type": "allMids"}, print).wait()
        ws.close()
    """, server.base_url)
    ran = run_script("""
        import sys
        ws = HyperliquidWS(sys.argv[1])
        ws.subscribe({"type": "allMids"}, lambda message: ws.close()).wait()
        ws.run_forever()
    """, server.base_url)
    idle = run_script("""
        import sys
        ws = HyperliquidWS(sys.argv[1])
        ws.info({"type": "meta"})
    """, server.base_url)
    for done in (closed, ran, idle):
        assert done.returncode == 0 and done.stderr == "", done.stderr


def test_a_caught_subscription_error_prints_nothing(server):
    done = run_script("""
        import sys
        ws = HyperliquidWS(sys.argv[1])
        try:
            ws.subscribe({"type": "trades", "coin": "NOPE"}, print).wait()
        except SubscriptionError as exc:
            print("caught:", exc.server_text)
    """, server.base_url)
    assert done.returncode == 0
    assert done.stdout.startswith("caught: Invalid subscription"), done.stdout
    assert done.stderr == "", done.stderr


def test_close_all_closes_every_open_client_of_the_process(server):
    first, second = Collector(), Collector()
    old = HyperliquidWS(server.base_url, name="hlws-old-cell")  # a notebook cell, run twice
    new = HyperliquidWS(server.base_url, name="hlws-new-cell")
    old.subscribe({"type": "allMids"}, first).wait(DEADLINE)
    new.subscribe({"type": "allMids"}, second).wait(DEADLINE)
    server.advance(1)
    first.wait_for(1)
    second.wait_for(1)

    assert hyperliquid_ws.close_all() == 2
    assert old.closed and new.closed
    assert not {t.name for t in client_threads() if t.name.startswith(("hlws-old-cell", "hlws-new-cell"))}
    delivered = len(first.messages)
    server.advance(2)
    wait_until(lambda: server.subscriptions() == [], what="the server to see both clients go")
    assert len(first.messages) == delivered  # the old cell's callback is called no more
    assert hyperliquid_ws.close_all() == 0


def test_a_with_block_that_ends_right_after_subscribing_warns_but_not_one_that_got_messages(server):
    server.silence()  # no ack, no frame can arrive before the block ends
    try:
        quick = run_script("""
            import sys
            with HyperliquidWS(sys.argv[1]) as ws:
                ws.subscribe({"type": "trades", "coin": "SOL"}, print)
        """, server.base_url)
    finally:
        server.silence(False)
    assert quick.returncode == 0, quick.stderr
    assert quick.stderr.count("run_forever()") == 1 and '{"type":"trades","coin":"SOL"}' in quick.stderr
    assert "the with block closed" in quick.stderr

    served = run_script("""
        import sys, threading
        got = threading.Event()
        with HyperliquidWS(sys.argv[1]) as ws:
            ws.subscribe({"type": "allMids"}, lambda message: got.set())
            assert got.wait(30)
    """, server.base_url)
    assert served.returncode == 0, served.stderr
    assert "run_forever()" not in served.stderr and "with block" not in served.stderr

    acked = run_script(f"""
        import sys
        with HyperliquidWS(sys.argv[1]) as ws:  # a quiet feed: its ack comes, no message yet
            ws.subscribe({{"type": "orderUpdates", "user": "{server.market.users[0]}"}}, print).wait(30)
    """, server.base_url)
    assert acked.returncode == 0, acked.stderr
    assert "with block" not in acked.stderr
