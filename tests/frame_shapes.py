"""Compare the shape of a frame with a captured one: keys and JSON value types, nested.

Pure functions for ``test_conformance``. A path names a place in a frame: keys joined
with ``.``, ``[]`` for the items of a list (``data.fills[].liquidation``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Hints:
    """Where a difference from the capture is one the live server makes too.

    - ``optional``: keys live sends only sometimes (``cloid``, a fill's ``liquidation``);
      they may be missing from either side, and are compared when both have them.
    - ``nullable``: values live sends as null or as the captured type.
    - ``maps``: objects keyed by data (coins), whose values alone are compared.
    - ``may_be_empty``: lists the local frame may leave empty although the capture has items.
    - ``omitted_when_empty``: optional keys live leaves out rather than send empty (``[]``).
    """

    optional: frozenset[str] = frozenset()
    nullable: frozenset[str] = frozenset()
    maps: frozenset[str] = frozenset()
    may_be_empty: frozenset[str] = frozenset()
    omitted_when_empty: frozenset[str] = frozenset()


ROOT = "<root>"
"""How ``hints`` names the frame itself (its path is the empty string)."""


def hints(**paths: str) -> Hints:
    """``hints(optional="a.b data.c", ...)``: space-separated paths per field of ``Hints``."""
    return Hints(**{name: frozenset("" if path == ROOT else path for path in value.split())
                    for name, value in paths.items()})


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    return {int: "int", float: "float", str: "str", list: "list", dict: "object"}.get(type(value), "?")


def differences(captured: Any, local: Any, rules: Hints = Hints(), path: str = "") -> list[str]:
    """Every way the shape of ``local`` differs from ``captured``; empty when they agree."""
    want, got = type_name(captured), type_name(local)
    if want != got:
        if path in rules.nullable and "null" in (want, got):
            return []
        return [f"{path or ROOT}: {got} where the capture has {want}"]
    if isinstance(captured, dict):
        return _object_differences(captured, local, rules, path)
    if isinstance(captured, list):
        return _list_differences(captured, local, rules, path)
    return []


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _object_differences(captured: dict[str, Any], local: dict[str, Any], rules: Hints, path: str) -> list[str]:
    if path in rules.maps:
        problems = []
        for key, value in local.items():
            problems += _best_match(list(captured.values()), value, rules, f"{path}[]", _join(path, key))
        return problems
    variant_a, variant_b = captured.get("type"), local.get("type")
    if isinstance(variant_a, str) and isinstance(variant_b, str) and variant_a != variant_b:
        return []  # another variant of a tagged union (ledger deltas): nothing to compare it with
    problems = [f"{_join(path, key)}: sent empty where live leaves the key out" for key, value in local.items()
                if _join(path, key) in rules.omitted_when_empty and value in ([], {})]
    for key in captured.keys() - local.keys():
        if _join(path, key) not in rules.optional:
            problems.append(f"{_join(path, key)}: missing (the capture has it)")
    for key in local.keys() - captured.keys():
        if _join(path, key) not in rules.optional:
            problems.append(f"{_join(path, key)}: not in the capture")
    for key in captured.keys() & local.keys():
        problems += differences(captured[key], local[key], rules, _join(path, key))
    return problems


def _list_differences(captured: list[Any], local: list[Any], rules: Hints, path: str) -> list[str]:
    if not captured:
        return []
    item_path = f"{path}[]"
    if not local:
        return [] if path in rules.may_be_empty else [f"{path}: empty, so nothing of it is checked"]
    problems = []
    for item in local[:20]:
        problems += _best_match(captured, item, rules, item_path, item_path)
    return sorted(set(problems))


def _best_match(candidates: list[Any], item: Any, rules: Hints, rule_path: str, shown: str) -> list[str]:
    """No problems if ``item`` has the shape of one of ``candidates`` (items of a capture
    may differ among themselves: a null side of a bbo, a tuple's members); else the
    problems against the closest one."""
    ranked: list[tuple[bool, int, list[str]]] = []
    for candidate in candidates:
        found = differences(candidate, item, rules, rule_path)
        if not found:
            return []
        ranked.append((type_name(candidate) != type_name(item), len(found), found))
    best = min(ranked, key=lambda entry: entry[:2])[2]
    return [problem.replace(rule_path, shown, 1) for problem in best]
