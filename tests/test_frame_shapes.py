"""The shape comparison behind the conformance test: pure, no sockets."""

from __future__ import annotations

from tests.frame_shapes import differences, hints


def test_same_shape_with_other_values_agrees() -> None:
    captured = {"coin": "HYPE", "px": "35.2", "n": 3, "levels": [[{"px": "1.0", "n": 1}], []]}
    local = {"coin": "BTC", "px": "65000.0", "n": 7, "levels": [[{"px": "2.0", "n": 2}], [{"px": "3.0", "n": 1}]]}
    assert differences(captured, local) == []


def test_missing_extra_and_retyped_fields_are_named_by_path() -> None:
    captured = {"data": {"fills": [{"px": "1.0", "tid": 5, "twapId": None}]}}
    local = {"data": {"fills": [{"px": 1.0, "tid": 5, "cloid": "0x01"}]}}
    assert differences(captured, local) == [
        "data.fills[].cloid: not in the capture",
        "data.fills[].px: float where the capture has str",
        "data.fills[].twapId: missing (the capture has it)",
    ]
    relaxed = hints(optional="data.fills[].cloid data.fills[].twapId", nullable="data.fills[].px")
    assert differences(captured, local, relaxed) == ["data.fills[].px: float where the capture has str"]


def test_list_items_may_match_any_captured_item() -> None:
    captured = {"bbo": [None, {"px": "1.0"}]}
    assert differences(captured, {"bbo": [{"px": "2.0"}, None]}) == []
    assert differences(captured, {"bbo": [{"px": 2}]}) == ["bbo[].px: int where the capture has str"]


def test_an_empty_local_list_checks_nothing_unless_allowed() -> None:
    assert differences({"a": [1]}, {"a": []}) == ["a: empty, so nothing of it is checked"]
    assert differences({"a": [1]}, {"a": []}, hints(may_be_empty="a")) == []


def test_maps_compare_values_and_variants_are_skipped() -> None:
    assert differences({"mids": {"BTC": "1.0"}}, {"mids": {"@107": "2.0", "ETH": 3}}, hints(maps="mids")) == [
        "mids.ETH: int where the capture has str"]
    assert differences({"delta": {"type": "deposit", "usdc": "1"}},
                       {"delta": {"type": "withdraw", "usdc": "1", "fee": "0"}}) == []


def test_a_key_live_leaves_out_when_empty_must_not_come_empty() -> None:
    rules = hints(optional="states[].vaults", omitted_when_empty="states[].vaults")
    captured = {"states": [{"equity": "1.0", "vaults": [{"name": "HLP"}]}]}
    assert differences(captured, {"states": [{"equity": "2.0"}]}, rules) == []
    found = differences(captured, {"states": [{"equity": "2.0", "vaults": []}]}, rules)
    assert "states[].vaults: sent empty where live leaves the key out" in found
