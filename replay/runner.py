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
from replay.prompts import PromptError, PromptVersion
from replay.providers import Completion, Provider, ProviderError
from replay.rebuild import ChatRequest, build_request
from replay.records import RunSettings, journal_reservation, write_result
from replay.result_rows import Outcome, error_row, ok_row
from replay.tracing import ReplayTracer
from store.location import Destination
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
class _Leg:
    """One request of a case and its worst case."""

    request: ChatRequest
    in_tokens: int
    out_tokens: int
    worst_usd: float


@dataclass
class _Job:
    case: dict[str, Any]
    leg: _Leg  # the candidate: the new prompt version
    control: _Leg | None = None  # baseline "replay": the call's own prompt, re-sent to the same endpoint

    @property
    def request(self) -> ChatRequest:
        return self.leg.request

    @property
    def legs(self) -> list[_Leg]:
        return [self.control, self.leg] if self.control is not None else [self.leg]


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
        store: Destination | None = None,  # where results go (a Delta store's location); default: `root`
    ) -> None:
        self.store = root if store is None else store
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
            model, max_tokens = self.settings.model, self.settings.default_max_tokens
            try:
                request = build_request(case, version, model, max_tokens)
                # the control: the call as it was (its own prompt and model, or --model), to the same endpoint
                control = (
                    build_request(case, None, model or None, max_tokens) if self.settings.baseline == "replay" else None
                )
            except PromptError as exc:
                prepared.append(
                    error_row(self.run_id, self.settings.prompt_version, case, None, "prompt", str(exc), 0, 0.0, 0)
                )
                continue
            prepared.append(_Job(case, self._leg(request), self._leg(control) if control else None))
        return prepared

    def _leg(self, request: ChatRequest) -> _Leg:
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
        return _Leg(request, in_tokens, out_tokens, worst)

    def run(
        self, prepared: list[_Job | dict[str, Any]], stats: RunStats, budget: Budget, progress: Progress | None
    ) -> RunStats:
        stats.budget = budget
        pending: set[Future] = set()
        with ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="replay") as pool:
            try:
                for index, job in enumerate(prepared):
                    if isinstance(job, dict):  # could not be built: stored as an error, costs nothing
                        write_result(self.store, job)
                        stats.errors += 1
                        continue
                    while len(pending) >= self.settings.concurrency:
                        pending = self._collect(pending, stats, progress)
                    reservations = None if self._stop.is_set() else self._reserve(job, budget, pending, stats, progress)
                    if reservations is None:
                        rest = [j for j in prepared[index:] if isinstance(j, _Job)]
                        stats.skipped = [f"{j.case['trace_id']}/{j.case['span_id']}" for j in rest]
                        break
                    pending.add(pool.submit(self._call, job, reservations, budget))
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
    ) -> list[Reservation] | None:
        """Reserve the worst case of each of the job's requests, waiting for calls in flight to settle;
        None once they cannot fit."""
        while not budget.overrun:
            reservations = []
            for leg in job.legs:
                reservation = self._reserve_for(job.case, leg, budget)
                if reservation is None:
                    break
                reservations.append(reservation)
            if len(reservations) == len(job.legs):
                for reservation in reservations:
                    self._journal(job.case, reservation)
                return reservations
            for reservation in reservations:  # all or nothing
                budget.settle(reservation, 0.0, 0)
            if not pending:
                return None
            pending.intersection_update(self._collect(pending, stats, progress))
        return None

    def _reserve_for(self, case: dict[str, Any], leg: _Leg, budget: Budget) -> Reservation | None:
        return budget.reserve(leg.worst_usd, leg.in_tokens, leg.out_tokens)

    def _journal(self, case: dict[str, Any], reservation: Reservation) -> None:
        """Journal a reservation before its call goes out: a run killed while the call is in flight counts it
        as spent on resume (the provider may have billed it), so the ceiling holds across kills."""
        with self._journal_lock:
            journal_reservation(self.root, self.run_id, case, reservation.usd, reservation.tokens)

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

    def _call(self, job: _Job, reservations: list[Reservation], budget: Budget) -> str:
        outcomes: list[Outcome] = []
        for index, (leg, reservation) in enumerate(zip(job.legs, reservations, strict=True)):
            outcome = self._send(job.case, leg, reservation, budget)
            outcomes.append(outcome)
            if outcome.error is not None:
                for unused in reservations[index + 1 :]:
                    budget.settle(unused, 0.0, 0)
                return self._fail(job, outcomes, is_control=leg is job.control)
        charged = {"charged_usd": sum(o.charged_usd for o in outcomes)}
        charged["charged_tokens"] = sum(o.charged_tokens for o in outcomes)
        control = outcomes[0] if job.control is not None else None
        write_result(
            self.store,
            ok_row(
                self.run_id,
                self.settings.prompt_version,
                self.refusal_rules,
                job.case,
                job.request,
                outcomes[-1],
                control,
            )
            | charged,
        )
        return "ok"

    def _send(self, case: dict[str, Any], leg: _Leg, reservation: Reservation | None, budget: Budget) -> Outcome:
        """One request with its retries; the reservation is settled whatever happens."""
        charged_usd, charged_tokens, attempt = 0.0, 0, 0
        while True:
            attempt += 1
            start = time.time_ns()
            try:
                completion = self.provider.complete(leg.request)
            except ProviderError as exc:
                self._trace(case, leg.request, start, time.time_ns(), None, str(exc))
                if exc.maybe_billed:  # the provider may have done the work: its worst case counts as spent
                    budget.settle(reservation, reservation.usd, reservation.tokens)
                    charged_usd, charged_tokens = charged_usd + reservation.usd, charged_tokens + reservation.tokens
                    reservation = None
                give_up = not exc.retryable or attempt > self.settings.max_retries or self._stop.is_set()
                if not give_up and reservation is None:
                    reservation = self._reserve_for(case, leg, budget)
                    if reservation is None:
                        exc, give_up = ProviderError(f"{exc}; no budget left to retry", retryable=False), True
                    else:
                        self._journal(case, reservation)
                if give_up:
                    if reservation is not None:
                        budget.settle(reservation, 0.0, 0)  # a refused or failed request is not billed
                    return Outcome(None, exc, attempt, 0.0, charged_usd, charged_tokens, None)
                self.sleep(self._backoff(attempt, exc.retry_after_s))
                continue
            end = time.time_ns()
            self._trace(case, leg.request, start, end, completion, None)
            usd, tokens = self._actual_cost(leg.request, completion, reservation)
            budget.settle(reservation, usd, tokens)
            latency = (end - start) / 1e6
            return Outcome(completion, None, attempt, usd, charged_usd + usd, charged_tokens + tokens, latency)

    def _fail(self, job: _Job, outcomes: list[Outcome], is_control: bool) -> str:
        failed = outcomes[-1]
        exc = failed.error
        kind = f"http_{exc.status}" if exc.status else ("retries_exhausted" if exc.retryable else "provider")
        if is_control:
            kind, message = f"control_{kind}", f"the control request (original prompt) failed: {exc}"
        else:
            message = str(exc)
        charged_usd, charged_tokens = sum(o.charged_usd for o in outcomes), sum(o.charged_tokens for o in outcomes)
        row = error_row(
            self.run_id, self.settings.prompt_version, job.case, job.request, kind, message, failed.attempts,
            charged_usd, charged_tokens,
        )  # fmt: skip
        write_result(self.store, row)
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

    def _trace(self, case, request: ChatRequest, start: int, end: int, completion, error: str | None) -> None:
        try:
            name = self.settings.prompt_name or case.get("prompt_name")
            version = self.settings.prompt_version or case.get("prompt_version")
            self.tracer.record(request, case, name, version, start, end, completion, error)
        except Exception:  # tracing must never cost a result
            logger.exception("tracing the replay call failed")
