"""Output-structure signatures and validation against what the request asked for."""

from __future__ import annotations

import json

import pytest

from store.quality import quality_columns
from store.quality.signature import SIGNATURE_CHARS, output_signature
from store.quality.validation import requested_json, validate_output

ORDER = {"order_id": "A-1", "items": [{"sku": "KB-1", "qty": 2}, {"sku": "MS-2", "qty": 1, "gift": True}], "total": 9.5}


def test_json_shape_is_type_aware_and_ignores_values() -> None:
    sig = output_signature(json.dumps(ORDER))
    assert sig.format == "json"
    assert sig.signature == "json:{items:[{gift?:bool,qty:num,sku:str}],order_id:str,total:num}"
    assert sig.keys == ["items", "items[].gift", "items[].qty", "items[].sku", "order_id", "total"]
    other = {"total": 120, "order_id": "B-9", "items": [{"qty": 7, "sku": "X", "gift": False}]}
    assert output_signature(json.dumps(other, indent=2)).signature == sig.signature.replace("gift?", "gift"), (
        "key order, whitespace and values do not matter; a key every element has is not optional"
    )
    assert output_signature('{"a": null, "b": []}').signature == "json:{a:null,b:[]}"
    assert output_signature("[1, 2.5, 3]").signature == "json:[num]"
    assert output_signature('[{"a": 1}, "x"]').signature == "json:[str|{a:num}]"


def test_json_in_a_fence() -> None:
    fenced = "```json\n" + json.dumps(ORDER) + "\n```"
    assert output_signature(fenced).signature == output_signature(json.dumps(ORDER)).signature
    embedded = 'Here is the record:\n\n```json\n{"id": 3}\n```\n\nLet me know!'
    sig = output_signature(embedded)
    assert (sig.format, sig.signature, sig.keys) == ("json", "json(embedded):{id:num}", ["id"])
    assert output_signature("{not json").format == "text"


def test_markdown_skeleton() -> None:
    text = (
        "# Report\n\nIntro paragraph.\nStill intro.\n\n## Findings\n- one\n- two\n- three\n\n"
        "| a | b | c |\n|---|---|---|\n| 1 | 2 | 3 |\n| 4 | 5 | 6 |\n\n1. first\n2. second\n\n"
        "```python\nprint('# not a heading')\n```\n\n> quoted"
    )
    sig = output_signature(text)
    assert sig.format == "markdown"
    assert sig.signature == "md:h1>p>h2>ul>table(3)>ol>code(python)>quote"
    assert output_signature(text.replace("- three\n", "")).signature == sig.signature, "item counts are not shape"
    assert sig.length == len(text)


@pytest.mark.parametrize(("length", "bucket"), [(5, "xs"), (50, "s"), (300, "m"), (1500, "l"), (5000, "xl")])
def test_text_length_buckets(length: int, bucket: str) -> None:
    sig = output_signature("a" * length)
    assert (sig.format, sig.signature, sig.length) == ("text", f"text:{bucket}", length)


def test_tool_calls_and_empty() -> None:
    calls = [{"id": "1", "name": "search", "arguments": {}}, {"id": "2", "name": "lookup_order", "arguments": {}}]
    assert output_signature(None, calls) == output_signature("", json.dumps(calls))
    sig = output_signature(None, calls)
    assert (sig.format, sig.signature) == ("tool_calls", "tools:[lookup_order,search]")
    both = output_signature("Let me check.", [{"function": {"name": "search"}}])  # OpenAI chat shape
    assert (both.format, both.signature) == ("text", "text:xs+tools:[search]")
    assert output_signature(None).signature == output_signature("  \n").signature == "empty"


def test_long_signatures_are_cut_and_hashed() -> None:
    wide = {f"field_{i:03d}": i for i in range(100)}
    sig = output_signature(json.dumps(wide)).signature
    assert len(sig) <= SIGNATURE_CHARS and "~" in sig
    narrower = dict(wide)
    del narrower["field_099"]
    assert output_signature(json.dumps(narrower)).signature != sig, "the hash tells shapes with one prefix apart"
    assert output_signature(json.dumps(wide)).signature == sig, "stable across calls"


SCHEMA = {
    "type": "object",
    "properties": {"sentiment": {"enum": ["positive", "negative", "neutral"]}, "confidence": {"type": "number"}},
    "required": ["sentiment", "confidence"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("params", "output_type", "asked", "schema"),
    [
        ({"response_format": "json_object"}, None, True, None),  # gen_ai.openai.request.response_format
        ({"response_format": {"type": "json_object"}}, None, True, None),  # OpenInference invocation params
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": SCHEMA}}},
            None,
            True,
            SCHEMA,
        ),
        ({"structured_output_schema": {"type": "json_object"}}, None, True, None),  # OpenLLMetry
        ({"structured_output_schema": json.dumps(SCHEMA)}, None, True, SCHEMA),  # OpenLLMetry, the schema itself
        ({"response_mime_type": "application/json", "response_schema": SCHEMA}, None, True, SCHEMA),  # Gemini
        ({"temperature": 0.2}, "json", True, None),  # gen_ai.output.type = json
        ({"response_format": {"type": "text"}}, "text", False, None),
        (None, None, False, None),
    ],
)
def test_what_counts_as_asking_for_json(params, output_type, asked, schema) -> None:
    assert requested_json(params, output_type) == (asked, schema)


def test_validation_pass_and_fail() -> None:
    schema_params = {"response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": SCHEMA}}}
    good = '{"sentiment": "negative", "confidence": 0.93}'
    assert validate_output(good, schema_params) is None
    assert validate_output("```json\n" + good + "\n```", schema_params) is None
    assert validate_output('{"sentiment": "angry", "confidence": 1}', schema_params) == (
        "output does not match the requested schema at sentiment: 'angry' is not one of "
        "['positive', 'negative', 'neutral']"
    )
    assert "at (root): 'confidence' is a required property" in validate_output(
        '{"sentiment": "neutral"}', schema_params
    )
    assert validate_output(
        '{"sentiment": "negative", "confidence": 0.9', {"response_format": "json_object"}
    ).startswith("output is not valid JSON: Expecting ',' delimiter"), "a truncated answer (finish_reason length) fails"
    assert validate_output("Sure! Here you go: {}", {}, output_type="json").startswith("output is not valid JSON")
    assert validate_output("plain prose", {"temperature": 0}) is None, "nothing asked, nothing checked"
    assert validate_output(None, {"response_format": "json_object"}) is None, "tool calls only: nothing to check"
    broken = {"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "no-such-type"}}}}
    assert validate_output(good, broken) is None, "the request's broken schema is not the output's failure"


def test_quality_columns_combine_app_reported_validation() -> None:
    asked = {"response_format": "json_object"}
    passed = quality_columns('{"a": 1}', request_params=asked)
    assert (passed["validation_status"], passed["validation_error"]) == ("pass", None)
    app_fail = quality_columns('{"a": 1}', request_params=asked, app_validation=("fail", "missing field b"))
    assert (app_fail["validation_status"], app_fail["validation_error"]) == (
        "fail",
        "application reported: missing field b",
    )
    ours = quality_columns("not json", request_params=asked, app_validation=("pass", None))
    assert ours["validation_status"] == "fail", "the app's pass does not hide unparseable JSON"
    only_app = quality_columns("free text", app_validation=("pass", None))
    assert (only_app["validation_status"], only_app["output_format"]) == ("pass", "text")
    nothing = quality_columns("free text")
    assert nothing["validation_status"] is None
    refused = quality_columns("I'm sorry, but I can't help with that. I'm not sure why you'd ask.")
    assert (refused["refused"], refused["refusal_rule"], refused["hedging_rule"]) == (True, "en.cannot_assist@1", None)
