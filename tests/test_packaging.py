"""What we ship: the sdist and the wheel build, twine accepts them, and the wheel installs
into a fresh virtualenv whose ``hyperliquid-ws demo`` works.

Slow (a build and a venv with packages from PyPI: about a minute), so it can be skipped
with ``HLWS_SKIP_PACKAGING=1``; CI runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest

pytest.importorskip("build")
from packaging.requirements import Requirement  # a dependency of build

import hyperliquid_ws

pytestmark = pytest.mark.skipif(
    os.environ.get("HLWS_SKIP_PACKAGING") == "1", reason="HLWS_SKIP_PACKAGING=1"
)

ROOT = Path(__file__).resolve().parent.parent
# Not part of the source: local state that must not leak into the copy we build from.
LOCAL_STATE = shutil.ignore_patterns(
    ".git", "__pycache__", "*.py[cod]", "*.egg-info", "build", "dist", ".venv*", "venv",
    ".pytest_cache", ".mypy_cache", ".ruff_cache", ".ipynb_checkpoints",
)
STEP_TIMEOUT = 240  # seconds for any one build or pip step; normally a few seconds each


def run(*command: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``command``, failing the test with its output if it exits non-zero."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=STEP_TIMEOUT)
    assert done.returncode == 0, f"{command} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project, so building writes nothing into the working tree."""
    copy = tmp_path_factory.mktemp("source") / "hyperliquid_ws"
    shutil.copytree(ROOT, copy, ignore=LOCAL_STATE)
    return copy


@pytest.fixture(scope="module")
def dists(source: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"wheel": ..., "sdist": ...}``, built by ``python -m build`` (sdist, then the wheel from it)."""
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, source)
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


def wheel_metadata(wheel: Path) -> tuple[list[str], Message]:
    """The wheel's file names, and its METADATA (headers; ``get_all`` for repeated ones)."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [metadata_name] = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    return names, metadata


@pytest.mark.timeout(STEP_TIMEOUT)
def test_twine_accepts_the_wheel_and_the_sdist(dists):
    pytest.importorskip("twine")
    run(sys.executable, "-m", "twine", "check", "--strict", dists["wheel"], dists["sdist"])


@pytest.mark.timeout(STEP_TIMEOUT)
def test_the_wheel_holds_the_whole_package_typed_and_nothing_else(dists, source):
    names, _ = wheel_metadata(dists["wheel"])
    assert "hyperliquid_ws/py.typed" in names
    assert "hyperliquid_ws/testing/__init__.py" in names
    shipped = {n for n in names if n.endswith(".py")}
    expected = {p.relative_to(source).as_posix() for p in (source / "hyperliquid_ws").rglob("*.py")}
    assert shipped == expected, f"missing {expected - shipped}, unexpected {shipped - expected}"
    top_level = {n.split("/")[0] for n in names}
    assert top_level == {"hyperliquid_ws", f"hyperliquid_ws-{hyperliquid_ws.__version__}.dist-info"}


@pytest.mark.timeout(STEP_TIMEOUT)
def test_the_wheel_metadata_needs_only_websocket_client_and_requests(dists):
    _, metadata = wheel_metadata(dists["wheel"])
    assert metadata["Name"] == "hyperliquid-ws"
    assert metadata["Version"] == hyperliquid_ws.__version__
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert str(metadata.get_payload()).lstrip().startswith("# hyperliquid_ws"), "README is the long description"
    requirements = [Requirement(line) for line in metadata.get_all("Requires-Dist", [])]
    runtime = {r.name for r in requirements if r.marker is None}
    assert runtime == {"websocket-client", "requests"}
    assert {"fast", "testing", "dev"} <= set(metadata.get_all("Provides-Extra", []))
    testing = {r.name for r in requirements if r.marker is not None and r.marker.evaluate({"extra": "testing"})}
    assert testing == {"aiohttp"}
    for extra in ("redis", "gateway"):  # the Redis Streams gateway: redis-py and nothing else
        assert {r.name for r in requirements if r.marker is not None and r.marker.evaluate({"extra": extra})} == {
            "redis"}


@pytest.mark.timeout(STEP_TIMEOUT)
def test_the_sdist_holds_the_sources_readme_and_license(dists):
    with tarfile.open(dists["sdist"]) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for needed in ("README.md", "LICENSE", "pyproject.toml", "setup.cfg", "hyperliquid_ws/py.typed",
                   "hyperliquid_ws/__init__.py", "hyperliquid_ws/testing/server.py"):
        assert needed in names, f"{needed} is missing from the sdist"


@pytest.mark.skipif(not (ROOT / "MANIFEST.in").exists(),
                    reason="no MANIFEST.in yet: the sdist has tests/test_*.py but not conftest.py or examples/")
@pytest.mark.timeout(STEP_TIMEOUT)
def test_the_sdist_is_self_contained_so_its_tests_can_run(dists, source):
    with tarfile.open(dists["sdist"]) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    wanted = {p.relative_to(source).as_posix() for folder in ("tests", "examples")
              for p in (source / folder).rglob("*") if p.suffix in (".py", ".ipynb")}
    wanted |= {"LICENSE", "CHANGELOG.md", "mkdocs.yml"}
    wanted |= {p.relative_to(source).as_posix() for p in (source / "docs").glob("*.md")}  # tests run their samples
    assert wanted <= names, f"missing from the sdist: {sorted(wanted - names)}"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


@pytest.mark.timeout(2 * STEP_TIMEOUT)
def test_the_wheel_installs_into_a_fresh_venv_and_the_demo_runs(dists, tmp_path):
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python, command = bin_dir / "python", bin_dir / "hyperliquid-ws"
    wheel = dists["wheel"]

    # The plain install brings exactly the two runtime dependencies (and theirs), no aiohttp.
    run(python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", wheel)
    installed = json.loads(run(python, "-m", "pip", "list", "--format=json").stdout)
    names = {package["name"].lower() for package in installed}
    assert {"hyperliquid-ws", "websocket-client", "requests"} <= names
    assert "aiohttp" not in names
    # Run from a directory without the source tree, so only the installed copy can be imported.
    assert run(command, "--version", cwd=tmp_path).stdout.split() == ["hyperliquid-ws", hyperliquid_ws.__version__]
    where = run(python, "-c", "import hyperliquid_ws; print(hyperliquid_ws.__file__)", cwd=tmp_path).stdout
    assert Path(where.strip()).is_relative_to(venv)

    # demo needs the testing extra: without it, a clear message and exit status 2.
    without = subprocess.run([command, "demo", "--count", "3"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=STEP_TIMEOUT)
    assert without.returncode == 2 and "testing extra" in without.stderr, without.stderr

    run(python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", f"{wheel}[testing]")
    demo = run(command, "demo", "--count", "3", cwd=tmp_path)
    messages = [json.loads(line) for line in demo.stdout.splitlines()]
    assert len(messages) == 3
    assert {message["channel"] for message in messages} <= {"trades", "allMids"}
    assert "Traceback" not in demo.stderr
