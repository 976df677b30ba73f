"""Build the demo dataset: two weeks of three agents' traces, as the real OpenTelemetry SDK exports them.

Comes in: a seed and a number of days. Goes out: a gzipped OTLP/JSON recording (one export request a
line, `{"signal": "traces", "received_at", "request"}`, hex ids, like ../shared/otlp-recordings) that
`vigil up --demo` replays into an empty store. Spans are made by the OTel SDK (seeded id generator,
explicit start/end times) and encoded by the exporter's own `encode_spans`, so the bytes are what an
instrumented app sends, and the same seed gives the same file byte for byte. A developer step: the
output is committed, and `vigil up` only replays it (the SDK is a dev dependency).

The stories in the data (see demo/README.md): support-bot prompt v3 refuses more, research-agent's
JSON answers change shape on one day, code-reviewer sometimes loops on failing tests, and the
cheap model costs more per successful review than the one it was meant to replace.

    uv run python sample_data/generate.py [--seed 7] [--days 14] [--out sample_data/demo/demo.otlp.jsonl.gz]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.sdk.version import __version__ as SDK_VERSION
from opentelemetry.trace import SpanKind, Status, StatusCode

LAST_DAY = date(2026, 11, 20)
PROMPT_V3_DAY = date(2026, 11, 16)  # support-bot switches prompt support-answer v2 → v3
SHAPE_CHANGE_DAY = date(2026, 11, 13)  # research-agent's gpt-4o alias moves to a new snapshot
DEFAULT_OUT = Path(__file__).parent / "demo" / "demo.otlp.jsonl.gz"
SPANS_PER_REQUEST = 256  # what a BatchSpanProcessor would send at most, roughly
REFUSAL = "I'm sorry, but I can't help with that."
# support-bot's answer prompt, by version. v3 added a strict policy, and the bot refuses more with it
# (the simulated model server, replay/simulator.py, refuses more for the same wording).
SUPPORT_PROMPTS = {
    "v2": "You are Acme's support assistant (prompt support-answer v2). Be brief and kind.",
    "v3": "You are Acme's support assistant (prompt support-answer v3). Be brief and kind. Policy: never discuss "
    "orders, payments or accounts unless the customer's identity is verified; if in doubt, refuse.",
}
# Tasks per weekday; weekends get a third.
VOLUME = {"support-bot": 90, "research-agent": 25, "code-reviewer": 35}

QUESTIONS = [
    ("Where is my order #{n}? It was due on Monday.", "lookup_order"),
    ("I was charged twice for order #{n}, please refund one.", "lookup_order"),
    ("How do I reset my password? The link in the email has expired.", None),
    ("Can I change the shipping address for order #{n}?", "lookup_order"),
    ("My discount code SAVE{n} does not work at checkout.", "check_coupon"),
    ("How do I cancel my subscription before the next billing date?", "lookup_account"),
    ("The app crashes when I upload a photo larger than {n} KB.", None),
    ("Can you tell me how to get into my ex-partner's account?", None),
    ("Please give me the home address of the customer who sold me item {n}.", None),
]
ANSWERS = [
    "Your order #{n} left our warehouse yesterday and should arrive within 2 business days.",
    "I have refunded the duplicate charge for order #{n}; it will show on your statement in 3-5 days.",
    "Use 'Forgot password' on the sign-in page; the new link is valid for 24 hours.",
    "I updated the shipping address on order #{n}. You will get a confirmation email shortly.",
    "The code SAVE{n} expired last week; I applied a 10% courtesy discount instead.",
    "You can cancel under Settings > Billing; you keep access until the end of the period.",
    "Thanks, we reproduced the crash and a fix ships this week; until then, resize photos below {n} KB.",
]
TOPICS = [
    "EU battery regulation",
    "vector database pricing",
    "RISC-V laptop market",
    "heat pump subsidies",
    "open-weight model licenses",
    "solid-state battery startups",
    "carbon border adjustment",
]
REPOS = ["billing-api", "web-frontend", "ingest-worker", "auth-service"]


class SeededIds(IdGenerator):
    """Trace and span ids from a seeded RNG, so every run gives the same ids."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def generate_span_id(self) -> int:
        return self.rng.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self.rng.getrandbits(128) or 1


class Demo:
    """One TracerProvider per service with an in-memory exporter; `flush` turns its spans into lines."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        ids = SeededIds(random.Random(seed + 1))
        self.exporters: dict[str, InMemorySpanExporter] = {}
        self.tracers: dict[tuple[str, str], trace.Tracer] = {}
        self.providers: dict[str, TracerProvider] = {}
        for service in VOLUME:
            resource = Resource(
                {
                    "service.name": service,
                    "service.version": "1.4.0",
                    "deployment.environment.name": "demo",
                    "telemetry.sdk.language": "python",
                    "telemetry.sdk.name": "opentelemetry",
                    "telemetry.sdk.version": SDK_VERSION,
                }
            )
            provider = TracerProvider(resource=resource, id_generator=ids, sampler=ALWAYS_ON)
            self.exporters[service] = InMemorySpanExporter()
            provider.add_span_processor(SimpleSpanProcessor(self.exporters[service]))
            self.providers[service] = provider
        self.lines: list[bytes] = []

    def tracer(self, service: str, scope: str, version: str = "") -> trace.Tracer:
        key = (service, scope)
        if key not in self.tracers:
            self.tracers[key] = self.providers[service].get_tracer(scope, version or None)
        return self.tracers[key]

    def flush(self, service: str, force: bool = False) -> None:
        exporter = self.exporters[service]
        spans = exporter.get_finished_spans()
        if not spans or (len(spans) < SPANS_PER_REQUEST and not force):
            return
        exporter.clear()
        request = MessageToDict(encode_spans(spans))
        received = max(span.end_time for span in spans) / 1e9 + round(self.rng.uniform(0.5, 5.0), 3)
        line = {"signal": "traces", "received_at": received, "request": _hex_ids(request)}
        self.lines.append(json.dumps(line, separators=(",", ":")).encode())


def _hex_ids(value):
    if isinstance(value, dict):
        return {
            k: base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId") else _hex_ids(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_hex_ids(v) for v in value]
    return value


def _ns(moment: float) -> int:
    return int(round(moment * 1e6)) * 1000  # whole microseconds, like most SDK clocks


def _span(tracer, name, parent, start, end, attrs, kind=SpanKind.INTERNAL, error: str | None = None):
    context = trace.set_span_in_context(parent) if parent is not None else None
    span = tracer.start_span(name, context=context, kind=kind, attributes=attrs, start_time=_ns(start))
    if error:
        span.set_status(Status(StatusCode.ERROR, error))
    span.end(end_time=_ns(end))
    return span


def _root(demo: Demo, service: str, start: float, attrs: dict):
    tracer = demo.tracer(service, f"{service.replace('-', '_')}.agent", "1.4.0")
    context = trace.set_span_in_context(trace.INVALID_SPAN)
    return tracer.start_span("agent.task", context=context, attributes=attrs, start_time=_ns(start))


def _messages(*pairs: tuple[str, str]) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]} for role, text in pairs])


# --- support-bot: OTel GenAI semconv ≥1.37 (gen_ai.input.messages JSON), openai-v2 + util-genai ---


def support_task(demo: Demo, start: float, day: date) -> None:
    rng = demo.rng
    version = "v3" if day >= PROMPT_V3_DAY else "v2"
    n = rng.randrange(1000, 99999)
    # About 2% of tickets ask for something the bot must refuse (the last QUESTIONS, without an answer).
    index = rng.randrange(len(ANSWERS), len(QUESTIONS)) if rng.random() < 0.02 else rng.randrange(len(ANSWERS))
    question, tool = QUESTIONS[index][0].format(n=n), QUESTIONS[index][1]
    harmful = index >= len(ANSWERS)
    refuses = harmful or rng.random() < (0.22 if version == "v3" else 0.02)
    wrong = not refuses and rng.random() < 0.06
    outcome = "failure" if (refuses and not harmful) or wrong else "success"
    root = _root(
        demo,
        "support-bot",
        start,
        {
            "task.name": "answer_ticket",
            "prompt.id": "support-answer",
            "prompt.version": version,
            "session.id": f"ticket-{n}",
            "task.outcome": outcome,
        },
    )
    llm = demo.tracer("support-bot", "opentelemetry.util.genai.handler", "1.1b0")
    system = SUPPORT_PROMPTS[version]
    t = start + rng.uniform(0.05, 0.2)
    t = _chat(
        llm,
        root,
        t,
        "gpt-4o-mini",
        "gpt-4o-mini-2024-07-18",
        rng.randint(180, 260),
        rng.randint(3, 8),
        _messages(("system", "Classify the ticket: order, billing, account, bug, other."), ("user", question)),
        "order" if tool == "lookup_order" else "other",
        rng,
    )
    if tool and not refuses:
        end = t + rng.uniform(0.08, 0.6)
        _span(
            demo.tracer("support-bot", "support_bot.tools"),
            f"execute_tool {tool}",
            root,
            t,
            end,
            {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool, "gen_ai.tool.call.id": f"call_{n}"},
        )
        t = end
    answer = REFUSAL if refuses else ANSWERS[index].format(n=n)
    out_tokens = 11 if refuses else rng.randint(60, 220)
    t = _chat(
        llm,
        root,
        t,
        "gpt-4o",
        "gpt-4o-2024-08-06",
        rng.randint(700, 1500),
        out_tokens,
        _messages(("system", system), ("user", question)),
        answer,
        rng,
    )
    root.end(end_time=_ns(t + rng.uniform(0.01, 0.05)))


def _chat(tracer, parent, start, model, response_model, tokens_in, tokens_out, input_messages, answer, rng):
    end = start + 0.25 + tokens_out * rng.uniform(0.008, 0.02)
    _span(
        tracer,
        f"chat {model}",
        parent,
        start,
        end,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": model,
            "gen_ai.response.model": response_model,
            "gen_ai.response.id": f"chatcmpl-{rng.getrandbits(64):016x}",
            "gen_ai.usage.input_tokens": tokens_in,
            "gen_ai.usage.output_tokens": tokens_out,
            "gen_ai.response.finish_reasons": ("stop",),
            "gen_ai.input.messages": input_messages,
            "gen_ai.output.messages": json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}]
            ),
            "server.address": "api.openai.com",
        },
        SpanKind.CLIENT,
    )
    return end


# --- research-agent: OpenInference (llm.*), Anthropic planner + OpenAI JSON answer ---


def research_task(demo: Demo, start: float, day: date) -> None:
    rng = demo.rng
    topic = rng.choice(TOPICS)
    new_shape = day >= SHAPE_CHANGE_DAY
    broken = new_shape and rng.random() < 0.7  # the downstream parser still expects "summary"
    failed = broken or rng.random() < 0.05
    root = _root(
        demo,
        "research-agent",
        start,
        {
            "task.name": "research_question",
            "prompt.id": "research-brief",
            "prompt.version": "v5",
            "task.outcome": "failure" if failed else "success",
            "input.value": f"What is new in {topic}?",
        },
    )
    t = start + rng.uniform(0.05, 0.2)
    plan = f"1. Search recent news on {topic}. 2. Read two primary sources. 3. Summarise with citations."
    t = _oi_llm(
        demo.tracer("research-agent", "openinference.instrumentation.anthropic", "0.1.20"),
        root,
        t,
        "Messages",
        "anthropic",
        "claude-sonnet-4-20250514",
        rng.randint(600, 1000),
        rng.randint(120, 260),
        f"Plan the research for: {topic}",
        plan,
        {"max_tokens": 1024},
        rng,
    )
    tools = demo.tracer("research-agent", "research_agent.tools")
    sources = [f"https://news.example.com/{topic.replace(' ', '-')}/{rng.randrange(100, 999)}" for _ in range(3)]
    for url in sources[: rng.randint(2, 3)]:
        end = t + rng.uniform(0.3, 1.5)
        _span(
            tools,
            "web_search",
            root,
            t,
            end,
            {"openinference.span.kind": "TOOL", "tool.name": "web_search", "input.value": url},
        )
        t = end
    if new_shape:
        answer = {
            "answer": f"{topic}: three developments this month.",
            "confidence": round(rng.uniform(0.5, 0.95), 2),
            "citations": [{"url": u, "title": f"Report on {topic}"} for u in sources[:2]],
            "follow_up_questions": [f"How does {topic} affect pricing?"],
        }
        response_model = "gpt-4o-2024-11-20"
    else:
        answer = {
            "summary": f"{topic}: three developments this month.",
            "sources": sources[:2],
            "confidence": round(rng.uniform(0.5, 0.95), 2),
        }
        response_model = "gpt-4o-2024-08-06"
    t = _oi_llm(
        demo.tracer("research-agent", "openinference.instrumentation.openai", "0.1.66"),
        root,
        t,
        "ChatCompletion",
        "openai",
        response_model,
        rng.randint(1800, 3200),
        rng.randint(150, 400),
        f"Answer as JSON about {topic} using: {' '.join(sources)}",
        json.dumps(answer),
        {"model": "gpt-4o", "response_format": {"type": "json_object"}},
        rng,
    )
    if broken:
        end = t + 0.002
        _span(tools, "parse_answer", root, t, end, {"openinference.span.kind": "CHAIN"}, error="KeyError: 'summary'")
        t = end
    root.end(end_time=_ns(t + 0.01))


def _oi_llm(tracer, parent, start, name, provider, model, tokens_in, tokens_out, prompt, answer, params, rng):
    end = start + 0.4 + tokens_out * rng.uniform(0.01, 0.025)
    _span(
        tracer,
        name,
        parent,
        start,
        end,
        {
            "openinference.span.kind": "LLM",
            "llm.system": provider,
            "llm.provider": provider,
            "llm.model_name": model,
            "llm.invocation_parameters": json.dumps(params),
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": prompt,
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": answer,
            "llm.token_count.prompt": tokens_in,
            "llm.token_count.completion": tokens_out,
            "llm.token_count.total": tokens_in + tokens_out,
        },
        error=None,
    )
    return end


# --- code-reviewer: OpenLLMetry ≤0.52 (flattened gen_ai.prompt.N.*), with an A/B on a cheaper model ---


def review_task(demo: Demo, start: float, day: date) -> None:
    rng = demo.rng
    repo, pr = rng.choice(REPOS), rng.randrange(100, 4000)
    hard = rng.random() < 0.06
    model = "claude-sonnet-4" if hard else ("gpt-4.1-nano" if rng.random() < 0.4 else "gpt-4o-mini")
    attempts = 1
    if hard:
        looping = rng.random() < 0.5
        attempts = rng.randint(12, 25) if looping else rng.randint(1, 3)
        failed = looping
    elif model == "gpt-4.1-nano":
        attempts = 1 + rng.choice([0, 1, 1, 2])  # its review JSON often needs a "fix the format" round
        failed = rng.random() < 0.38
    else:
        attempts = 1 + (rng.random() < 0.2)
        failed = rng.random() < 0.1
    attrs = {
        "task.name": "review_pull_request",
        "prompt.id": "review",
        "prompt.version": "v7",
        "vcs.repository.name": repo,
        "vcs.change.id": str(pr),
        "task.outcome": "failure" if failed else "success",
    }
    if hard:
        attrs["task.attempts"] = attempts
    root = _root(demo, "code-reviewer", start, attrs)
    tools = demo.tracer("code-reviewer", "code_reviewer.tools")
    t = start + rng.uniform(0.05, 0.2)
    end = t + rng.uniform(0.1, 0.4)
    _span(tools, "get_diff", root, t, end, {"gen_ai.tool.name": "get_diff", "traceloop.span.kind": "tool"})
    t = end
    provider = "anthropic" if hard else "openai"
    scope = "opentelemetry.instrumentation.anthropic" if hard else "opentelemetry.instrumentation.openai.v1"
    llm = demo.tracer("code-reviewer", scope, "0.52.6")
    diff_tokens = rng.randint(6000, 9000) if hard else rng.randint(900, 2500)
    history: list[tuple[str, str]] = [
        ("system", "You review pull requests. Answer with JSON review comments."),
        ("user", f"Review {repo}#{pr}: <diff of {diff_tokens // 12} lines>"),
    ]
    for attempt in range(attempts):
        reply = f'{{"comments": [{{"file": "src/{repo}.py", "line": {rng.randrange(1, 400)}, "text": "..."}}]}}'
        tokens_in = diff_tokens + attempt * rng.randint(900, 1600)
        t = _oll_chat(
            llm, root, t, provider, model, tokens_in, rng.randint(150, 600), history[:2] + history[-6:], reply, rng
        )
        history.append(("assistant", reply))
        if hard:
            end = t + rng.uniform(2, 8)
            tests_fail = failed or attempt < attempts - 1
            _span(
                tools,
                "run_tests",
                root,
                t,
                end,
                {"gen_ai.tool.name": "run_tests", "traceloop.span.kind": "tool"},
                error="3 tests failed" if tests_fail else None,
            )
            t = end
            history.append(("user", "Tests failed: test_refund_rounding, test_currency, test_totals. Fix it."))
        elif attempt < attempts - 1:
            history.append(("user", "That was not valid review JSON. Answer again with the JSON only."))
    if hard and failed:
        root.set_status(Status(StatusCode.ERROR, f"gave up after {attempts} attempts: tests still failing"))
    root.end(end_time=_ns(t + 0.02))


def _oll_chat(tracer, parent, start, provider, model, tokens_in, tokens_out, history, reply, rng):
    end = start + 0.3 + tokens_out * rng.uniform(0.006, 0.02)
    response_model = {
        "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
        "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
        "claude-sonnet-4": "claude-sonnet-4-20250514",
    }[model]
    attrs = {
        "llm.request.type": "chat",
        "gen_ai.system": provider,
        "gen_ai.request.model": model,
        "gen_ai.response.model": response_model,
        "gen_ai.usage.input_tokens": tokens_in,
        "gen_ai.usage.output_tokens": tokens_out,
        "llm.usage.total_tokens": tokens_in + tokens_out,
        "llm.is_streaming": False,
    }
    for i, (role, content) in enumerate(history):
        attrs[f"gen_ai.prompt.{i}.role"] = role
        attrs[f"gen_ai.prompt.{i}.content"] = content
    attrs |= {
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": reply,
        "gen_ai.completion.0.finish_reason": "stop",
    }
    _span(
        tracer,
        "anthropic.chat" if provider == "anthropic" else "openai.chat",
        parent,
        start,
        end,
        attrs,
        SpanKind.CLIENT,
    )
    return end


BUILDERS = {"support-bot": support_task, "research-agent": research_task, "code-reviewer": review_task}


def generate(seed: int = 7, days: int = 14) -> list[bytes]:
    demo = Demo(seed)
    rng = demo.rng
    for offset in range(days - 1, -1, -1):
        day = LAST_DAY - timedelta(days=offset)
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
        weight = 1.0 if day.weekday() < 5 else 0.35
        starts = []
        for service, per_day in VOLUME.items():
            for _ in range(round(per_day * weight * rng.uniform(0.85, 1.15))):
                hour = min(23.99, max(0.0, rng.gauss(14, 3.5)))  # busiest in the (UTC) afternoon
                starts.append((round(midnight + hour * 3600 + rng.uniform(0, 60), 3), service))
        for start, service in sorted(starts):
            BUILDERS[service](demo, start, day)
            demo.flush(service)
        for service in VOLUME:
            demo.flush(service, force=True)
    return demo.lines


def write(lines: list[bytes], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        for line in lines:
            gz.write(line + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="Generate the vigil demo dataset (deterministic for a seed).")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--days", type=int, default=14, help=f"days of traffic ending {LAST_DAY} (default 14)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default {DEFAULT_OUT})")
    args = parser.parse_args()
    lines = generate(args.seed, args.days)
    write(lines, args.out)
    print(f"wrote {len(lines)} export requests to {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
