"""Every ```python block of README.md and of the pages in docs/ runs here, against a
local server, so the docs cannot rot; so does every ``hyperliquid-ws`` line of their
```bash blocks (set-up commands such as ``pip install`` are left to CI itself).

The samples are written for mainnet and stay exactly as a reader sees them. While they
run, ``hyperliquid_ws.HyperliquidWS`` is a subclass that the harness controls:

- its default ``base_url`` (and ``MAINNET_API_URL``, ``TESTNET_API_URL``, or those URLs
  spelled out) is the local server, whose market ticks every 50 ms so data flows; the
  client a ``Recorder`` makes is one of these too;
- samples run in a scratch directory whose ``data/`` already holds a short recording
  of that server (trades BTC, l2Book ETH), so the recording guide's reads and replays
  have something to read and nothing lands in the checkout;
- ``run_forever()`` returns, closing the client, once the sample's callbacks have had a
  few fresh messages, or once a callback of the sample closed the client (it fails
  the sample if neither happens);
- ``ws.stream(...)`` loops end after a few messages (and fail the sample if none came);
- a sample callback that raises (a ``CallbackError`` at ``on_error``) fails the sample;
- a watchdog closes every client and stream if a section runs past its deadline.

The blocks of one section (a page's heading) run in order in one namespace, and
nothing else is in it: a sample that uses a name it does not define fails. A line such
as ``print(x)  # text`` is checked: ``text`` must be printed.
"""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import hyperliquid_ws
from hyperliquid_ws import (
    MAINNET_API_URL,
    TESTNET_API_URL,
    Backoff,
    CallbackError,
    HyperliquidWS,
    Stream,
    Subscription,
)
from hyperliquid_ws.recording import recorder as recorder_module
from hyperliquid_ws.testing import LocalServer

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]

RUN_FOREVER_MESSAGES = 3  # fresh deliveries before a sample's run_forever() returns
STREAM_MESSAGES = 3  # messages a sample's stream loop gets before it ends
SAMPLE_DEADLINE = 10.0  # seconds for run_forever's messages to arrive
SECTION_DEADLINE = 30.0  # seconds before the watchdog closes everything


@dataclass(frozen=True)
class Block:
    section: str  # "page.md: heading"
    line: int  # line of the block's first code line in its page
    code: str
    path: Path = README
    language: str = "python"


def python_blocks(text: str, path: Path = README, language: str = "python") -> list[Block]:
    """Every ```python block (or ``language``), with the heading it sits under and its line number."""
    blocks: list[Block] = []
    section = f"{path.name}: (top)"
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        heading = re.match(r"#{1,6}\s+(.*)", line)
        if heading:
            section = f"{path.name}: {heading.group(1).strip()}"
        fence = re.match(r"```(\w*)\s*$", line)
        if fence:
            end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
            if fence.group(1) == language:
                blocks.append(Block(section, index + 2, "\n".join(lines[index + 1:end]) + "\n", path, language))
            index = end
        index += 1
    return blocks


BLOCKS = [block for page in PAGES for block in python_blocks(page.read_text(encoding="utf-8"), page)]
SECTIONS: dict[str, list[Block]] = {}
for _block in BLOCKS:
    SECTIONS.setdefault(_block.section, []).append(_block)


def slug(section: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", section.lower()).strip("-")


# -- what each section must leave behind, beyond running cleanly ------------------------

def _names_looked_up(namespace: dict[str, Any], out: str) -> None:
    assert "BTC" in namespace["perps"] and namespace["pairs"]["PURR/USDC"] == "PURR/USDC", out


def _limits_raised(namespace: dict[str, Any], out: str) -> None:
    assert namespace["ws"].limits.max_users == 15


def _quick_start_printed_trades(namespace: dict[str, Any], out: str) -> None:
    assert re.search(r"^SOL [AB] \S+ @ \S+$", out, re.MULTILINE), out


def _stream_printed_data(namespace: dict[str, Any], out: str) -> None:
    assert out.count("\n") >= STREAM_MESSAGES, out


def _request_response(namespace: dict[str, Any], out: str) -> None:
    assert namespace["book"]["coin"] == "ETH" and len(namespace["book"]["levels"]) == 2
    assert namespace["answer"]["status"] == "ok", namespace["answer"]


EXPECTATIONS: dict[str, Callable[[dict[str, Any], str], None]] = {
    "README.md: Quick start": _quick_start_printed_trades,
    "getting-started.md: A first script": _quick_start_printed_trades,
    "configuration.md: Limits, kept on the client side": _limits_raised,
    "notebooks.md: A blocking iterator, for scripts and notebooks": _stream_printed_data,
    "requests.md: Request/response over the socket": _request_response,
    "feeds.md: Looking names up": _names_looked_up,
}


# -- the harness ---------------------------------------------------------------------------

class Harness:
    """Redirects, bounds and watches everything one README section does."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.clients: list[HyperliquidWS] = []
        self.streams: list[BoundedStream] = []
        self.errors: list[BaseException] = []
        self.problems: list[str] = []
        self.expired = threading.Event()
        self._delivered = 0
        self._changed = threading.Condition()
        self.client_class = self._make_client_class()

    def redirect(self, url: str) -> str:
        return self.base_url if url.rstrip("/") in (MAINNET_API_URL, TESTNET_API_URL) else url

    def counted(self, callback: Callable[[Any], None]) -> Callable[[Any], None]:
        def deliver(message: Any) -> None:
            try:
                callback(message)
            finally:
                with self._changed:
                    self._delivered += 1
                    self._changed.notify_all()
        return deliver

    def on_error(self, user_hook: Callable[[BaseException], None] | None) -> Callable[[BaseException], None]:
        def record(error: BaseException) -> None:
            self.errors.append(error)
            if user_hook is not None:
                user_hook(error)
        return record

    def wait_for_fresh_deliveries(self, count: int, client: HyperliquidWS) -> None:
        """Until ``count`` more messages came, or a callback of the sample closed ``client``."""
        with self._changed:
            target = self._delivered + count
            arrived = self._changed.wait_for(
                lambda: self._delivered >= target or client.closed or self.expired.is_set(), SAMPLE_DEADLINE)
            if not arrived or self.expired.is_set():
                got = self._delivered - (target - count)
                self.problems.append(f"run_forever() got {got} of {count} messages within {SAMPLE_DEADLINE:g} s")

    def close_everything(self) -> None:
        for stream in self.streams:
            stream.close()
        for client in self.clients:
            client.close()

    def _make_client_class(self) -> type[HyperliquidWS]:
        harness = self

        class ReadmeHyperliquidWS(HyperliquidWS):
            """HyperliquidWS on the local server, with run_forever() and streams that end."""

            def __init__(self, base_url: str = MAINNET_API_URL, **kwargs: Any) -> None:
                kwargs.setdefault("backoff", Backoff(initial=0.05, maximum=0.5, reset_after=1.0))
                hook = kwargs.get("on_error")
                if hook is None or callable(hook):  # else the real constructor says what is wrong
                    kwargs["on_error"] = harness.on_error(hook)
                super().__init__(harness.redirect(base_url), **kwargs)
                harness.clients.append(self)

            def subscribe(self, subscription: dict[str, Any], callback: Callable[[Any], None], *,
                          allow_unknown: bool = False) -> Subscription:
                if not callable(callback):  # let the real method say what is wrong
                    return super().subscribe(subscription, callback, allow_unknown=allow_unknown)
                return super().subscribe(subscription, harness.counted(callback), allow_unknown=allow_unknown)

            def stream(self, subscription: dict[str, Any], **kwargs: Any) -> Any:
                bounded = BoundedStream(super().stream(subscription, **kwargs), STREAM_MESSAGES)
                harness.streams.append(bounded)
                return bounded

            def run_forever(self) -> None:
                # The real one blocks until close() or Ctrl-C; a sample gets a few messages.
                try:
                    harness.wait_for_fresh_deliveries(RUN_FOREVER_MESSAGES, self)
                finally:
                    self.close()

        return ReadmeHyperliquidWS


class BoundedStream:
    """A ``Stream`` whose iteration ends after ``limit`` messages."""

    def __init__(self, stream: Stream, limit: int) -> None:
        self.stream = stream
        self.limit = limit
        self.yielded = 0

    def __iter__(self) -> Iterator[Any]:
        try:
            for message in self.stream:
                self.yielded += 1
                yield message
                if self.yielded >= self.limit:
                    break
        finally:
            self.stream.close()

    def __enter__(self) -> BoundedStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stream.close()

    def close(self) -> None:
        self.stream.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def client_threads(names: list[str]) -> list[str]:
    prefixes = tuple(p for name in names for p in (f"{name}-", f"{name}."))
    return [t.name for t in threading.enumerate() if prefixes and t.name.startswith(prefixes)]


@pytest.fixture(scope="module")
def ticking_server() -> Iterator[LocalServer]:
    with LocalServer(tick_interval=0.05) as server:
        yield server


@pytest.fixture(scope="module")
def docs_directory(ticking_server: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch directory whose ``data/`` holds a short recording of the server's trades
    BTC and l2Book ETH, made as the recording guide says."""
    directory = tmp_path_factory.mktemp("docs")
    with recorder_module.Recorder(directory / "data", base_url=ticking_server.base_url) as recorder:
        trades = recorder.record({"type": "trades", "coin": "BTC"})
        recorder.record({"type": "l2Book", "coin": "ETH"}).wait(SAMPLE_DEADLINE)
        trades.wait(SAMPLE_DEADLINE)
        ticking_server.advance(20)
    assert any((directory / "data").glob("*.ndjson.gz"))
    return directory


@pytest.fixture
def harness(ticking_server: LocalServer, docs_directory: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    harness = Harness(ticking_server.base_url)
    monkeypatch.chdir(docs_directory)
    monkeypatch.setattr(hyperliquid_ws, "HyperliquidWS", harness.client_class)
    monkeypatch.setattr(recorder_module, "HyperliquidWS", harness.client_class)
    monkeypatch.setattr(hyperliquid_ws, "MAINNET_API_URL", ticking_server.base_url)
    monkeypatch.setattr(hyperliquid_ws, "TESTNET_API_URL", ticking_server.base_url)
    yield harness
    harness.close_everything()


def defines_tests(block: Block) -> bool:
    return re.search(r"^def test_\w+\(", block.code, re.MULTILINE) is not None


def run_under_pytest(block: Block, directory: Path) -> None:
    """A block of pytest tests runs as a bot author would run it: under pytest, with the
    plugin's fixtures (the ``pytest11`` entry point) and nothing else."""
    path = directory / f"test_readme_line_{block.line}.py"
    path.write_text(block.code, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "pytest", path.name, "-q", "-p", "no:cacheprovider"],
                          cwd=directory, capture_output=True, text=True, timeout=SECTION_DEADLINE * 2)
    assert done.returncode == 0, f"{block.path.name}:{block.line}: pytest failed\n{done.stdout}{done.stderr}"


def run_section(blocks: list[Block], harness: Harness, directory: Path) -> dict[str, Any]:
    """Run a section's blocks in order in one namespace, under a watchdog; blocks that
    define pytest tests run under pytest instead."""
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    finished = threading.Event()

    def watch() -> None:
        if not finished.wait(SECTION_DEADLINE):
            harness.expired.set()
            harness.close_everything()

    watchdog = threading.Thread(target=watch, name="readme-watchdog", daemon=True)
    watchdog.start()
    try:
        for block in blocks:
            if defines_tests(block):
                run_under_pytest(block, directory)
                continue
            # Padding the code to its line makes tracebacks point into the page.
            code = compile("\n" * (block.line - 1) + block.code, str(block.path), "exec")
            exec(code, namespace)
    finally:
        finished.set()
        watchdog.join(SECTION_DEADLINE)
    assert not harness.expired.is_set(), f"the section ran past {SECTION_DEADLINE:g} s"
    return namespace


def printed_expectations(code: str) -> list[str]:
    """``print(...)  # text`` lines: ``text`` is what the README says gets printed."""
    return [m.group(1).strip() for m in re.finditer(r"^\s*print\(.*\)\s+#\s*(.+)$", code, re.MULTILINE)]


@pytest.mark.parametrize("section", list(SECTIONS), ids=[slug(s) for s in SECTIONS])
def test_docs_section_runs(section: str, harness: Harness, capsys: pytest.CaptureFixture[str],
                             tmp_path: Path) -> None:
    blocks = SECTIONS[section]
    namespace = run_section(blocks, harness, tmp_path)
    harness.close_everything()
    out = capsys.readouterr().out
    assert not harness.problems, harness.problems
    callback_errors = [repr(e) for e in harness.errors if isinstance(e, CallbackError)]
    assert not callback_errors, callback_errors
    for stream in harness.streams:
        assert stream.yielded, f"the stream over {stream.subscription} got no message"
    for expected in (text for block in blocks for text in printed_expectations(block.code)):
        assert expected in out, f"{section} says {expected!r} is printed; got {out!r}"
    check = EXPECTATIONS.get(section)
    if check is not None:
        check(namespace, out)
    names = [client.name for client in harness.clients]
    assert not client_threads(names), f"threads outlived close(): {client_threads(names)}"


def test_every_section_with_expectations_exists() -> None:
    assert set(EXPECTATIONS) <= set(SECTIONS), set(EXPECTATIONS) - set(SECTIONS)
    assert len(BLOCKS) >= 12, "fewer samples than expected: did the parser miss some?"
    pages = {block.path.name for block in BLOCKS}
    assert {"README.md", "feeds.md", "requests.md", "notebooks.md", "migration.md"} <= pages, pages


PLUGIN_SAMPLE = """\
def test_my_bot_sees_trades(hyperliquid_server, hyperliquid_client, hyperliquid_wait):
    trades = []
    hyperliquid_client.subscribe({"type": "trades", "coin": "BTC"}, trades.append).wait()
    hyperliquid_server.advance(3)
    hyperliquid_wait(lambda: trades, what="a trade")
"""


def test_a_block_of_pytest_tests_runs_under_pytest(harness: Harness, tmp_path: Path) -> None:
    run_section([Block("synthetic", 1, PLUGIN_SAMPLE)], harness, tmp_path)
    broken = PLUGIN_SAMPLE + "    assert not trades\n"
    with pytest.raises(AssertionError, match="pytest failed"):
        run_section([Block("synthetic", 1, broken)], harness, tmp_path)


def test_the_command_line_help_works() -> None:
    script = shutil.which("hyperliquid-ws", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "hyperliquid_ws"]
    done = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "demo" in done.stdout


# -- the command lines of the ```bash blocks ------------------------------------------------
#
# Every command of a ```bash block (each side of ``&&`` on its own) is run here, or is a
# set-up command that CI itself runs (.ci/run runs the README's test command, which
# installs the package and runs each check).

SET_UP = ("pip install ", "ruff check ", "mypy --strict ", "mkdocs build ", "python -m pytest")
SERVER = "python -m hyperliquid_ws.testing"
SERVE = "hyperliquid-ws serve"  # the same server, or a replay of data/: run as SERVER is


def bash_commands() -> list[tuple[str, str]]:
    """``(where, command)`` for every command of every ```bash block, comments cut off."""
    found = []
    for page in PAGES:
        for block in python_blocks(page.read_text(encoding="utf-8"), page, language="bash"):
            for offset, line in enumerate(block.code.splitlines()):
                for command in line.split("  #")[0].split("&&"):
                    if command.strip():
                        found.append((f"{page.name}:{block.line + offset}", command.strip()))
    return found


def is_cli(command: str) -> bool:
    return command.startswith(("hyperliquid-ws ", "python -m hyperliquid_ws ")) or command == "hyperliquid-ws"


def is_server(command: str) -> bool:
    return command.startswith(SERVER + " ") or command == SERVE or command.startswith(SERVE + " ")


COMMANDS = [(where, command) for where, command in bash_commands() if is_cli(command) and not is_server(command)]
SERVERS = [(where, command) for where, command in bash_commands() if is_server(command)]


def test_every_documented_command_is_run_here_or_by_ci() -> None:
    unrun = [f"{where}: {command}" for where, command in bash_commands()
             if not (is_cli(command) or is_server(command) or command.startswith(SET_UP))]
    assert not unrun, f"documented commands no test runs: {unrun}"
    assert COMMANDS and SERVERS


def as_run_here(command: str, base_url: str) -> list[str]:
    """The documented command on the local server: this interpreter, a count (for
    ``record``, a one-second ``--duration``), no testnet."""
    words = shlex.split(command)
    words = words[3:] if words[0] == "python" else words[1:]
    words = [w for w in words if w != "--testnet"]
    if "--base-url" in words:  # the docs' own local server (127.0.0.1:8765): ours
        words[words.index("--base-url") + 1] = base_url
    elif "demo" not in words:
        words += ["--base-url", base_url]
    asks_info = "info" in words[:2]
    if words[0] == "record":
        if "--duration" in words:
            words[words.index("--duration") + 1] = "1"
        else:
            words += ["--duration", "1"]
    elif not asks_info and "--count" not in words and "-n" not in words:
        words += ["--count", "1"]
    return [sys.executable, "-m", "hyperliquid_ws", *words]


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_documented_command_line_runs(where: str, command: str, ticking_server: LocalServer,
                                      tmp_path: Path) -> None:
    argv = as_run_here(command.replace("0x0000000000000000000000000000000000000000",
                                       ticking_server.market.users[0]), ticking_server.base_url)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, f"{where}: {command}\n{done.stderr}"
    if argv[3] == "record":  # it reports on stderr and writes files
        out = tmp_path / argv[argv.index("--out") + 1]
        assert any(out.glob("hl-*.ndjson*")), f"{where}: {command} wrote nothing\n{done.stderr}"
    else:
        assert done.stdout.strip(), f"{where}: {command} printed nothing"


@pytest.mark.parametrize(("where", "command"), SERVERS, ids=[where for where, _ in SERVERS])
def test_documented_server_command_serves_until_ctrl_c(where: str, command: str, docs_directory: Path) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    words = shlex.split(command)
    module = ["hyperliquid_ws.testing"] if words[0] == "python" else ["hyperliquid_ws", "serve"]
    words = words[3:] if words[0] == "python" else words[2:]
    if "--port" in words:
        words[words.index("--port") + 1] = str(port)
    else:
        words += ["--port", str(port)]
    server = subprocess.Popen([sys.executable, "-m", *module, *words], cwd=docs_directory,  # data/: a recording
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout is not None
        started = ""
        for line in server.stdout:  # the server logs its address, then this line (or exits: EOF)
            started += line
            if "press Ctrl-C" in line:
                break
        asked = subprocess.run([sys.executable, "-m", "hyperliquid_ws", "info", "meta", "--base-url",
                                f"http://127.0.0.1:{port}"], capture_output=True, text=True, timeout=60)
        assert asked.returncode == 0 and '"universe"' in asked.stdout, f"{where}: {command}\n{asked.stderr}"
        server.send_signal(signal.SIGINT)
        rest, _ = server.communicate(timeout=30)
    finally:
        server.kill()
    assert f"http://127.0.0.1:{port}" in started and server.returncode == 0, f"{where}: {command}\n{started}{rest}"
    assert "Traceback" not in rest, rest


def test_every_page_is_in_the_site_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    missing = [page.name for page in PAGES[1:] if f": {page.name}" not in nav]
    assert not missing, f"docs pages missing from mkdocs.yml nav: {missing}"
