"""A replay set + a prompt version → every call re-sent, compared and stored, within the budget.

Comes in: the set's cases, `RunSettings`, a provider, a pricer and an optional tracer. Goes out:
one `replay_results` row per finished case (written as it finishes) and the run's state rows.
Must not: pass the budget (each call's worst case is reserved before it is sent; see
`replay.budget`), retry a call that failed for a reason a retry cannot fix (a 4xx other than
429), or pay twice for a case: a resumed run skips every case that already has a result.

Retries: after a retryable `ProviderError`, wait a random time in [0, base·2^attempt] (full
jitter, at most `backoff_max_s`, at least the server's Retry-After), up to `max_retries` times.
A timeout may have been billed, so its reservation counts as spent and the retry reserves anew.
A failed case becomes a row with status `error`; it does not stop the run.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replay.budget import Budget, Reservation, worst_case_tokens
from replay.compare import compare_pair
from replay.prompts import PromptError, PromptVersion
from replay.providers import Completion, Provider, ProviderError
from replay.rebuild import ChatRequest, build_request
from replay.records import RunSettings, journal_reservation, write_result
from replay.tracing import ReplayTracer
from store.pricing import UNPRICED, Pricer
from store.quality.refusal import Rules

logger = logging.getLogger(__name__)

Progress = Callable[["RunStats"], None]


class RunError(ValueError):
    """A run that cannot start; the message says what to change."""


@dataclass
class RunStats:
    total: int
    done_before: int = 0
    ok: int = 0
    errors: int = 0
    skipped: list[str] = field(default_factory=list)  # "trace_id/span_id" of cases the budget left out
    budget: Budget | None = None
    status: str = "running"
    message: str = ""


@dataclass
class _Job:
    case: dict[str, Any]
    request: ChatRequest
    in_tokens: int
    out_tokens: int
    worst_usd: float


class Runner:
    def __init__(
        self,
        root: Path,
        run_id: str,
        settings: RunSettings,
        provider: Provider,
        pricer: Pricer,
        tracer: ReplayTracer,
        refusal_rules: Rules | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.root, self.run_id, self.settings, self.refusal_rules = root, run_id, settings, refusal_rules
        self.provider, self.pricer, self.tracer, self.sleep = provider, pricer, tracer, sleep
        self._rng = random.Random()
        self._stop = threading.Event()
        self._journal_lock = threading.Lock()

    def price(self, model: str, input_tokens: int, output_tokens: int) -> float | None:
        found = self.pricer.price(self.provider.name, model, None, input_tokens, output_tokens)
        return None if found.cost_source == UNPRICED else found.cost_usd

    def prepare(self, cases: list[dict[str, Any]], version: PromptVersion | None) -> list[_Job | dict[str, Any]]:
        """Each case → a job, or an error row when its request cannot be built (a missing variable)."""
        prepared: list[_Job | dict[str, Any]] = []
        for case in cases:
            try:
                request = build_request(case, version, self.settings.model, self.settings.default_max_tokens)
            except PromptError as exc:
                prepared.append(self._error_row(case, None, "prompt", str(exc), 0, 0.0, 0))
                continue
            in_tokens, out_tokens = worst_case_tokens(request.messages, request.tools, request.params["max_tokens"])
            worst = self.price(request.model, in_tokens, out_tokens)
            if worst is None:
                if self.settings.budget_usd is not None and not self.settings.allow_unpriced:
                    raise RunError(
                        f"model {request.model!r} has no price, so the USD budget cannot be enforced: add it to a "
                        "price file ([pricing] overrides_file, see sample_data/prices.example.toml) or pass "
                        "--allow-unpriced to rely on the token budget alone"
                    )
                worst = 0.0
            prepared.append(_Job(case, request, in_tokens, out_tokens, worst))
        return prepared

    def run(
        self, prepared: list[_Job | dict[str, Any]], stats: RunStats, budget: Budget, progress: Progress | None
    ) -> RunStats:
        stats.budget = budget
        pending: set[Future] = set()
        with ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="replay") as pool:
            try:
                for index, job in enumerate(prepared):
                    if isinstance(job, dict):  # could not be built: stored as an error, costs nothing
                        write_result(self.root, job)
                        stats.errors += 1
                        continue
                    while len(pending) >= self.settings.concurrency:
                        pending = self._collect(pending, stats, progress)
                    reservation = None if self._stop.is_set() else self._reserve(job, budget, pending, stats, progress)
                    if reservation is None:
                        rest = [j for j in prepared[index:] if isinstance(j, _Job)]
                        stats.skipped = [f"{j.case['trace_id']}/{j.case['span_id']}" for j in rest]
                        break
                    pending.add(pool.submit(self._call, job, reservation, budget))
                while pending:
                    pending = self._collect(pending, stats, progress)
            except KeyboardInterrupt:
                self._stop.set()
                stats.status, stats.message = "interrupted", "stopped by the user; resume to finish"
                wait(pending)
                return stats
        if budget.overrun:
            stats.status = "budget_exhausted"
            stats.message = "a response cost more than its reservation (the server ignored max_tokens?); stopped"
        elif stats.skipped:
            stats.status = "budget_exhausted"
            stats.message = f"budget reached: {len(stats.skipped)} cases skipped; resume with a larger budget"
        else:
            stats.status = "completed"
        return stats

    def _reserve(
        self, job: _Job, budget: Budget, pending: set[Future], stats: RunStats, progress: Progress | None
    ) -> Reservation | None:
        """Reserve the job's worst case, waiting for calls in flight to settle; None once it cannot fit."""
        while not budget.overrun:
            reservation = self._reserve_for(job, budget)
            if reservation is not None:
                return reservation
            if not pending:
                return None
            pending.intersection_update(self._collect(pending, stats, progress))
        return None

    def _reserve_for(self, job: _Job, budget: Budget) -> Reservation | None:
        """Reserve, and journal the reservation before the call goes out: a run killed while the call is in
        flight counts it as spent on resume (the provider may have billed it), so the ceiling holds across kills."""
        reservation = budget.reserve(job.worst_usd, job.in_tokens, job.out_tokens)
        if reservation is not None:
            with self._journal_lock:
                journal_reservation(self.root, self.run_id, job.case, reservation.usd, reservation.tokens)
        return reservation

    def _collect(self, pending: set[Future], stats: RunStats, progress: Progress | None) -> set[Future]:
        done, rest = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            if future.result() == "ok":
                stats.ok += 1
            else:
                stats.errors += 1
            if progress is not None:
                progress(stats)
        return rest

    def _call(self, job: _Job, reservation: Reservation, budget: Budget) -> str:
        charged_usd, charged_tokens, attempt = 0.0, 0, 0
        request = job.request
        while True:
            attempt += 1
            start = time.time_ns()
            try:
                completion = self.provider.complete(request)
            except ProviderError as exc:
                end = time.time_ns()
                self._trace(job, start, end, None, str(exc))
                if exc.maybe_billed:  # the provider may have done the work: its worst case counts as spent
                    budget.settle(reservation, reservation.usd, reservation.tokens)
                    charged_usd, charged_tokens = charged_usd + reservation.usd, charged_tokens + reservation.tokens
                    reservation = None
                if not exc.retryable or attempt > self.settings.max_retries or self._stop.is_set():
                    return self._fail(job, reservation, budget, exc, attempt, charged_usd, charged_tokens)
                if reservation is None:
                    reservation = self._reserve_for(job, budget)
                    if reservation is None:
                        exc = ProviderError(f"{exc}; no budget left to retry", retryable=False)
                        return self._fail(job, None, budget, exc, attempt, charged_usd, charged_tokens)
                self.sleep(self._backoff(attempt, exc.retry_after_s))
                continue
            end = time.time_ns()
            self._trace(job, start, end, completion, None)
            usd, tokens = self._actual_cost(request, completion, reservation)
            budget.settle(reservation, usd, tokens)
            row = self._ok_row(job, completion, (end - start) / 1e6, usd, attempt)
            row |= {"charged_usd": charged_usd + usd, "charged_tokens": charged_tokens + tokens}
            write_result(self.root, row)
            return "ok"

    def _fail(self, job, reservation, budget, exc, attempt, charged_usd, charged_tokens) -> str:
        if reservation is not None:
            budget.settle(reservation, 0.0, 0)  # a refused or failed request is not billed
        kind = f"http_{exc.status}" if exc.status else ("retries_exhausted" if exc.retryable else "provider")
        row = self._error_row(job.case, job.request, kind, str(exc), attempt, charged_usd, charged_tokens)
        write_result(self.root, row)
        return "error"

    def _backoff(self, attempt: int, retry_after_s: float | None) -> float:
        ceiling = min(self.settings.backoff_max_s, self.settings.backoff_base_s * 2 ** (attempt - 1))
        delay = self._rng.uniform(0, ceiling)
        return min(self.settings.backoff_max_s, max(delay, retry_after_s or 0.0))

    def _actual_cost(self, request: ChatRequest, completion: Completion, reservation: Reservation) -> tuple[float, int]:
        if completion.input_tokens is None or completion.output_tokens is None:
            return reservation.usd, reservation.tokens  # no usage reported: assume the worst case was billed
        tokens = completion.input_tokens + completion.output_tokens
        usd = self.price(completion.response_model or request.model, completion.input_tokens, completion.output_tokens)
        return (usd if usd is not None else 0.0), tokens

    def _trace(self, job: _Job, start: int, end: int, completion: Completion | None, error: str | None) -> None:
        try:
            name = self.settings.prompt_name or job.case.get("prompt_name")
            version = self.settings.prompt_version or job.case.get("prompt_version")
            self.tracer.record(job.request, job.case, name, version, start, end, completion, error)
        except Exception:  # tracing must never cost a result
            logger.exception("tracing the replay call failed")

    def _base_row(self, case: dict[str, Any], request: ChatRequest | None, attempts: int) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "trace_id": case["trace_id"],
            "span_id": case["span_id"],
            "position": case["position"],
            "attempts": attempts,
            "request": request.to_json() if request else None,
            "model": request.model if request else None,
            "old_prompt_version": case.get("prompt_version"),
            "new_prompt_version": self.settings.prompt_version or case.get("prompt_version"),
            "old_output": case.get("output_text"),
            "old_cost_usd": case.get("cost_usd"),
            "old_latency_ms": case.get("duration_ms"),
        }

    def _error_row(self, case, request, kind, message, attempts, charged_usd, charged_tokens) -> dict[str, Any]:
        row = self._base_row(case, request, attempts)
        return row | {
            "status": "error",
            "error_type": kind,
            "error": message[:2000],
            "charged_usd": charged_usd,
            "charged_tokens": charged_tokens,
        }

    def _ok_row(self, job: _Job, completion: Completion, latency_ms: float, usd: float, attempts: int) -> dict:
        case = job.case
        old = {
            "text": case.get("output_text"),
            "tool_calls": _loads(case.get("tool_calls")),
            "finish_reasons": case.get("finish_reasons"),
            "refusal": case.get("refusal"),
            "cost_usd": case.get("cost_usd"),
            "latency_ms": case.get("duration_ms"),
        }
        new = {
            "text": completion.text,
            "tool_calls": completion.tool_calls,
            "finish_reasons": completion.finish_reasons,
            "refusal": completion.refusal,
            "cost_usd": usd,
            "latency_ms": latency_ms,
        }
        comparison = compare_pair(old, new, job.request.params, self.refusal_rules)
        return (
            self._base_row(case, job.request, attempts)
            | comparison
            | {
                "status": "ok",
                "response_model": completion.response_model,
                "new_output": completion.text,
                "new_tool_calls": _dumps(completion.tool_calls) if completion.tool_calls else None,
                "new_finish_reasons": completion.finish_reasons,
                "input_tokens": completion.input_tokens,
                "output_tokens": completion.output_tokens,
                "new_cost_usd": usd,
                "new_latency_ms": latency_ms,
            }
        )


def _loads(value: Any) -> Any:
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return None


def _dumps(value: Any) -> str:
    return json.dumps(value)
