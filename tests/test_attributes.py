"""encode_value / decode_value are mirrors: what a sender encodes is what the store reads back."""

from __future__ import annotations

import pytest

from collector.attributes import decode_attributes, decode_value, encode_attributes, encode_value


@pytest.mark.parametrize(
    "value",
    ["text", "", 0, -(2**63), 2**63 - 1, 1.5, True, False, [1, "a", [2.0]], {"k": {"nested": [True]}}],
)
def test_round_trip(value: object) -> None:
    assert decode_value(encode_value(value)) == value


def test_bytes_come_back_as_hex_and_attributes_keep_order() -> None:
    assert decode_value(encode_value(b"\x00\xff")) == "00ff"
    attrs = {"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 3}
    assert decode_attributes(encode_attributes(attrs)) == attrs
    assert [kv.key for kv in encode_attributes(attrs)] == list(attrs)
