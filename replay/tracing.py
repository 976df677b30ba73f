"""The replay's own model calls → OTLP spans, sent to a vigil collector like any agent's.

Comes in: an OTLP/gRPC endpoint (or none) and, per call, the request and its completion. Goes
out: one `chat` span per attempt-series with the OTel GenAI attributes the collector normalizes
into `llm_calls`, tagged `vigil.replay.run_id` / `vigil.replay.set_id` and service `vigil-replay`
so the replay's traffic can be told apart from production. Must not: touch the global tracer
provider (the user's own OTel set-up stays as it is) or fail a run because the collector is down
(the exporter drops what it cannot send).
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

from replay.providers import Completion
from replay.rebuild import ChatRequest


class ReplayTracer:
    def __init__(self, endpoint: str | None, run_id: str, set_id: str, provider_name: str) -> None:
        self.run_id, self.set_id, self.provider_name = run_id, set_id, provider_name
        self._provider: TracerProvider | None = None
        if endpoint:
            resource = Resource.create({"service.name": "vigil-replay", "vigil.replay.run_id": run_id})
            self._provider = TracerProvider(resource=resource)
            insecure = not endpoint.startswith("https://")
            exporter = OTLPSpanExporter(endpoint=endpoint, insecure=insecure, timeout=5)
            self._provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
            self._tracer = self._provider.get_tracer("vigil.replay")

    @property
    def enabled(self) -> bool:
        return self._provider is not None

    def record(
        self,
        request: ChatRequest,
        case: dict[str, Any],
        prompt_name: str | None,
        prompt_version: str | None,
        start_ns: int,
        end_ns: int,
        completion: Completion | None,
        error: str | None,
    ) -> None:
        if self._provider is None:
            return
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": self.provider_name,
            "gen_ai.request.model": request.model,
            "gen_ai.input.messages": json.dumps(request.messages),
            "vigil.replay.run_id": self.run_id,
            "vigil.replay.set_id": self.set_id,
            "vigil.replay.source_trace_id": case["trace_id"],
            "vigil.replay.source_span_id": case["span_id"],
        }
        attributes |= {f"gen_ai.request.{k}": v for k, v in request.params.items() if isinstance(v, int | float | str)}
        if prompt_name:
            attributes["gen_ai.prompt.name"] = prompt_name
        if prompt_version:
            attributes["gen_ai.prompt.version"] = prompt_version
        if completion is not None:
            attributes |= {
                "gen_ai.response.model": completion.response_model or request.model,
                "gen_ai.response.finish_reasons": completion.finish_reasons,
                "gen_ai.output.messages": json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": completion.text}]}]
                ),
            }
            if completion.input_tokens is not None:
                attributes["gen_ai.usage.input_tokens"] = completion.input_tokens
            if completion.output_tokens is not None:
                attributes["gen_ai.usage.output_tokens"] = completion.output_tokens
        span = self._tracer.start_span(f"chat {request.model}", start_time=start_ns, attributes=attributes)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=end_ns)

    def close(self) -> None:
        if self._provider is not None:
            self._provider.force_flush(10_000)
            self._provider.shutdown()
