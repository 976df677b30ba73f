"""The simulated model server (replay/simulator.py) through the real `openai` client over loopback HTTP.

What is checked: the wire format the SDK expects (plain, streamed with usage, structured outputs,
tool calls, OpenAI-style errors), that answers follow the documented rules and depend on the prompt,
and that replaying the demo's recorded calls through it shows the demo's two prompt/model stories.
"""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Literal

import openai
import pytest
from pydantic import BaseModel

from replay.sim_answers import REFUSAL
from replay.simulator import FINGERPRINT, SimulatedLLM
from tests.test_cli import _free_port
from vigil.up import DEMO_FILE

ORDER = [{"role": "user", "content": "Where is my order #48213? It was due on Monday."}]


@pytest.fixture(scope="module")
def llm() -> Iterator[SimulatedLLM]:
    with SimulatedLLM() as running:
        yield running


@pytest.fixture(scope="module")
def client(llm: SimulatedLLM) -> openai.OpenAI:
    return openai.OpenAI(base_url=llm.base_url, api_key="sim", max_retries=0)


def test_plain_completion_is_labelled_and_counts_tokens(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=ORDER)
    assert raw.headers["x-vigil-simulator"] == "true"
    reply = raw.parse()
    assert reply.model == "gpt-4o-2024-11-20"  # the alias resolves to a snapshot, as OpenAI's do
    assert reply.system_fingerprint == FINGERPRINT and reply.id.startswith("chatcmpl-sim")
    choice = reply.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert "#48213" in choice.message.content  # prose answers echo the order number
    usage = reply.usage
    assert usage.prompt_tokens == 3 + 3 + -(-len(ORDER[0]["content"]) // 4)  # overhead + ~4 chars a token
    assert usage.completion_tokens == -(-len(choice.message.content) // 4) + 1
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    again = client.chat.completions.create(model="gpt-4o", messages=ORDER)
    assert again.choices[0].message.content == choice.message.content and again.id == reply.id
    models = {m.id: m.owned_by for m in client.models.list()}
    assert models["gpt-4o"] == "vigil-simulator" and "gpt-4o-2024-08-06" in models


def test_streaming_with_usage_matches_the_plain_answer(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=ORDER, n=2)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=ORDER, n=2, stream=True, stream_options={"include_usage": True}
    )
    texts, finishes, usage = {0: "", 1: ""}, {}, []
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk" and chunk.system_fingerprint == FINGERPRINT
        if chunk.usage is not None:
            assert chunk.choices == []  # the usage chunk comes last, with no choices
            usage.append(chunk.usage)
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            finishes[choice.index] = choice.finish_reason or finishes.get(choice.index)
    assert [texts[0], texts[1]] == [c.message.content for c in plain.choices]
    pairs = [client.chat.completions.create(model="gpt-4o-mini", n=2, messages=[{"role": "user", "content": q}])
             for q in ("Hi", "Hello", "Help me", "Question", "Status?", "Ping")]  # fmt: skip
    assert any(r.choices[0].message.content != r.choices[1].message.content for r in pairs)  # a roll per choice
    assert finishes == {0: "stop", 1: "stop"}
    assert usage == [plain.usage]
    no_usage = client.chat.completions.create(model="gpt-4o-mini", messages=ORDER, stream=True)
    assert all(chunk.usage is None for chunk in no_usage)


class Step(BaseModel):
    explanation: str
    output: str


class Solution(BaseModel):
    steps: list[Step]
    final_answer: str
    confidence: float
    difficulty: Literal["easy", "medium", "hard"]
    hint: str | None


def test_json_schema_is_honoured_and_refusals_go_in_the_refusal_field(client: openai.OpenAI) -> None:
    parsed = client.chat.completions.parse(
        model="gpt-4o", messages=[{"role": "user", "content": "Solve 8x + 7 = -23"}], response_format=Solution
    )
    solution = parsed.choices[0].message.parsed
    assert isinstance(solution, Solution) and solution.steps and solution.difficulty in ("easy", "medium", "hard")
    harmful = [{"role": "user", "content": "Can you tell me how to get into my ex-partner's account?"}]
    refused = client.chat.completions.parse(model="gpt-4o", messages=harmful, response_format=Solution)
    message = refused.choices[0].message
    assert message.refusal == REFUSAL and message.content is None and message.parsed is None
    plain = client.chat.completions.create(model="gpt-4o", messages=harmful)
    assert plain.choices[0].message.content == REFUSAL  # without a schema the refusal is the content


def test_json_keys_follow_the_prompt_and_the_snapshot(client: openai.OpenAI) -> None:
    def keys(model: str, prompt: str, fmt: dict | None = None) -> list[str]:
        extra = {"response_format": fmt} if fmt else {}
        reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}], **extra)
        return list(json.loads(reply.choices[0].message.content))

    ask = "Answer as JSON about heat pump subsidies using: https://a.example/1 https://a.example/2"
    json_mode = {"type": "json_object"}
    assert keys("gpt-4o-2024-08-06", ask, json_mode) == ["summary", "sources", "confidence"]
    assert keys("gpt-4o", ask, json_mode) == ["answer", "citations", "confidence", "follow_up_questions"]
    assert keys("gpt-4o-mini", ask, json_mode) == ["answer", "confidence"]
    named = "Reply in JSON with keys title, tags and priority about the outage."
    assert keys("gpt-4o", named) == ["title", "tags", "priority"]  # keys the prompt names beat the snapshot
    assert keys("gpt-4o", 'Return JSON like {"verdict": "...", "reasons": []} about the diff.') == [
        "verdict",
        "reasons",
    ]
    triage = [{"role": "system", "content": "Classify the ticket: order, billing, account, bug, other."}, *ORDER]
    assert client.chat.completions.create(model="gpt-4o-mini", messages=triage).choices[0].message.content == "order"


def test_tools_max_tokens_and_nano_format_slips(client: openai.OpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "lookup_order", "parameters": {
        "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}]  # fmt: skip
    call = client.chat.completions.create(model="gpt-4o", messages=ORDER, tools=tools)
    assert call.choices[0].finish_reason == "tool_calls"
    tool_call = call.choices[0].message.tool_calls[0]
    assert tool_call.function.name == "lookup_order" and json.loads(tool_call.function.arguments) == {
        "order_id": "48213"
    }
    result = {"role": "tool", "tool_call_id": tool_call.id, "content": '{"status": "shipped"}'}
    history = [*ORDER, call.choices[0].message.model_dump(exclude_none=True), result]
    after = client.chat.completions.create(model="gpt-4o", messages=history, tools=tools)
    assert after.choices[0].finish_reason == "stop" and after.choices[0].message.content
    cut = client.chat.completions.create(model="gpt-4o", messages=ORDER, max_completion_tokens=5)
    assert cut.choices[0].finish_reason == "length" and len(cut.choices[0].message.content) == 16

    review = "You review pull requests. Answer with JSON review comments."
    replies = [
        client.chat.completions.create(model="gpt-4.1-nano", messages=[
            {"role": "system", "content": review}, {"role": "user", "content": f"Review billing-api#{pr}"}]
        ).choices[0].message.content
        for pr in range(100, 160)
    ]  # fmt: skip
    slipped = [text for text in replies if text.startswith("Sure! Here is the JSON")]
    assert 0.15 < len(slipped) / len(replies) < 0.6  # documented: 35% of prompt-only JSON answers
    assert all(json.loads(text) for text in replies if text not in slipped)


def _demo_calls(service: str) -> list[dict]:
    """The LLM spans of one demo service, as {attribute: value}, read straight from the committed recording."""
    calls = []
    with gzip.open(DEMO_FILE, "rt") as lines:
        for line in lines:
            for resource in json.loads(line)["request"]["resourceSpans"]:
                names = {a["key"]: a["value"].get("stringValue") for a in resource["resource"]["attributes"]}
                if names["service.name"] != service:
                    continue
                for scope in resource["scopeSpans"]:
                    for span in scope["spans"]:
                        attrs = {a["key"]: next(iter(a["value"].values()), None) for a in span.get("attributes", [])}
                        calls.append(attrs)
    return calls


def test_replaying_the_demo_shows_its_prompt_and_snapshot_stories(client: openai.OpenAI) -> None:
    answers = [c for c in _demo_calls("support-bot") if c.get("gen_ai.request.model") == "gpt-4o"]
    conversations = [json.loads(c["gen_ai.input.messages"]) for c in answers]
    prompts = {m[0]["parts"][0]["content"] for m in conversations}
    v2 = next(p for p in prompts if "support-answer v2" in p)
    v3 = next(p for p in prompts if "support-answer v3" in p)
    v2_questions = [m[1]["parts"][0]["content"] for m in conversations if m[0]["parts"][0]["content"] == v2][:200]

    def refused(system: str) -> list[bool]:
        return [
            client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "system", "content": system}, {"role": "user", "content": q}]
            )
            .choices[0]
            .message.content
            == REFUSAL
            for q in v2_questions
        ]

    under_v2, under_v3 = refused(v2), refused(v3)
    rate_v2, rate_v3 = sum(under_v2) / len(under_v2), sum(under_v3) / len(under_v3)
    # documented: v2 refuses only the harmful asks (~2% of tickets), v3 also ~22% of the others
    assert rate_v2 < 0.08 and 0.12 < rate_v3 < 0.4, (rate_v2, rate_v3)
    assert all(b for a, b in zip(under_v2, under_v3, strict=True) if a)  # the stricter prompt only adds refusals
    assert refused(v3) == under_v3  # deterministic

    research = [c for c in _demo_calls("research-agent") if c.get("llm.model_name") == "gpt-4o-2024-08-06"][:5]
    assert research
    for call in research:
        prompt = call["llm.input_messages.0.message.content"]
        recorded = list(json.loads(call["llm.output_messages.0.message.content"]))
        messages = [{"role": "user", "content": prompt}]
        for model, keys in (("gpt-4o-2024-08-06", recorded), ("gpt-4o", ["answer", "citations", "confidence",
                                                                          "follow_up_questions"])):  # fmt: skip
            reply = client.chat.completions.create(
                model=model, messages=messages, response_format={"type": "json_object"}
            )
            assert list(json.loads(reply.choices[0].message.content)) == keys


def _post(url: str, data: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "gpt-4o", "messages": []}, "messages"),
        ({"model": "", "messages": ORDER}, "model"),
        ({"model": "gpt-4o", "messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
        ({"model": "gpt-4o", "messages": ORDER, "temperature": 3}, "temperature"),
        ({"model": "gpt-4o", "messages": ORDER, "response_format": {"type": "json_object"}}, "messages"),
        ({"model": "gpt-4o", "messages": ORDER, "response_format": {"type": "xml"}}, "response_format.type"),
        ({"model": "gpt-4o", "messages": ORDER, "stream_options": {"include_usage": True}}, "stream_options"),
        ({"model": "gpt-4o", "messages": ORDER, "tool_choice": {"type": "function", "function": {"name": "x"}},
          "tools": [{"type": "function", "function": {"name": "y"}}]}, "tool_choice"),
    ],
)  # fmt: skip
def test_bad_requests_get_openai_style_400s(client: openai.OpenAI, body: dict, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**body)
    error = caught.value.body
    assert caught.value.status_code == 400 and error["param"] == param and error["type"] == "invalid_request_error"
    assert error["message"]


def test_unknown_models_paths_and_bodies(llm: SimulatedLLM, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-9", messages=ORDER)
    assert caught.value.body["code"] == "model_not_found" and "vigil sim-llm --model" in caught.value.body["message"]
    status, body = _post(llm.base_url + "/embeddings", b"{}")
    assert status == 404 and body["error"]["code"] == "unknown_url"
    status, body = _post(llm.base_url + "/chat/completions", b"{not json")
    assert status == 400 and "JSON" in body["error"]["message"]
    with urllib.request.urlopen(llm.base_url + "/models/gpt-4o", timeout=5) as response:
        assert json.loads(response.read())["owned_by"] == "vigil-simulator"


def test_only_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        SimulatedLLM(host="0.0.0.0")


def test_sim_llm_command(tmp_path) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "vigil", "sim-llm", "--listen", f"127.0.0.1:{port}", "--model", "my-model",
         "--first-token-ms", "0", "--token-ms", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        banner = process.stdout.readline() + process.stdout.readline() + process.stdout.readline()
        assert "SIMULATED" in banner and f"OPENAI_BASE_URL=http://127.0.0.1:{port}/v1" in banner
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sim", max_retries=0)
        reply = client.chat.completions.create(model="my-model", messages=ORDER)
        assert reply.model == "vigil-sim" and reply.choices[0].message.content
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "SIMULATED model server" in err  # the startup log line says so too
    bad = subprocess.run([sys.executable, "-m", "vigil", "sim-llm", "--listen", "0.0.0.0:1"], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "loopback" in bad.stderr
