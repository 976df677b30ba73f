"""Start a replay from the dashboards: the Replay page's form → `vigil replay sample` + `vigil replay run`
(the sample: the calls picked on the Traces page, or a new seeded sample of the sidebar's slice; or a saved set).

The dashboards do not import the replay wing (DESIGN.md layering): they run the same commands a user
would, as child processes of the dashboards, one after the other in a background thread, with their
output in `<data_dir>/replay_logs/<run_id>.log`. The run writes its state to replay_runs as it goes,
so the page shows it while it runs; a run cut short (the dashboards stopped) resumes with
`vigil replay run --resume RUN`, paying nothing twice.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dashboards.filters import Filters

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    """A new seeded sample of the stored calls (`vigil replay sample`) in the sidebar's window and slice (all its
    filters but the environment, which `vigil replay sample` has no flag for)."""

    size: int
    seed: int
    filters: Filters

    def flags(self) -> list[str]:
        filters = self.filters
        name, _, version = (filters.prompt_version or "").rpartition("@")  # "name@version"; "?": not recorded
        values = {
            "--since": filters.since.isoformat() if filters.since else None,
            "--until": filters.until.isoformat() if filters.until else None,
            "--service": filters.service,
            "--model": filters.model,
            "--prompt": name if name not in ("", "?") else None,
            "--version": version if version not in ("", "?") else None,
        }
        return ["-n", str(self.size), "--seed", str(self.seed)] + [
            part for flag, value in values.items() if value for part in (flag, value)
        ]


@dataclass(frozen=True)
class ReplayRequest:
    """What the form asks for. Exactly one of `picks` (trace_id, span_id pairs), `set_id` and `sample` is given."""

    picks: tuple[tuple[str, str], ...] = ()
    set_id: str | None = None
    sample: Sample | None = None
    prompt_version: str | None = None  # None: re-run the calls as they were
    model: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    budget_usd: float | None = None


def new_run_id() -> str:
    return f"run-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"


def replay_commands(root: Path, request: ReplayRequest, run_id: str) -> list[list[str]]:
    """The `vigil` command lines that carry the request out, in order."""
    vigil = [sys.executable, "-m", "vigil"]
    # the dashboards' own config file (`vigil dashboards --config`): its [store] uri, budgets and rules
    config = os.environ.get("VIGIL_CONFIG")
    store = ["--data-dir", str(root), *(["--config", config] if config else [])]
    commands = []
    set_id = request.set_id
    if request.sample is not None:
        set_id = f"{run_id}-sample"
        commands.append(vigil + ["replay", "sample", *store, *request.sample.flags(), "--set-id", set_id])
    elif set_id is None:
        if not request.picks:
            raise ValueError("pick at least one call, choose a replay set or draw a sample")
        set_id = f"{run_id}-picks"
        # The ids were checked as hex when picked (store.replay_picks), so they are safe SQL literals.
        keys = ", ".join(f"'{trace}:{span}'" for trace, span in request.picks)
        where = f"trace_id || ':' || span_id IN ({keys})"
        sample = ["replay", "sample", *store, "-n", str(len(request.picks))]
        commands.append(vigil + sample + ["--where", where, "--set-id", set_id])
    run = ["replay", "run", *store, "--set", set_id, "--run-id", run_id]
    optional = {
        "--prompt-version": request.prompt_version,
        "--model": request.model,
        "--base-url": request.base_url,
        "--budget-usd": None if request.budget_usd is None else f"{request.budget_usd:g}",
    }
    for flag, value in optional.items():
        if value:
            run += [flag, value]
    commands.append(vigil + run + ["--api-key-env", request.api_key_env])
    return commands


def start_replay(root: Path, request: ReplayRequest, run_id: str | None = None) -> tuple[str, Path]:
    """Start the commands in the background; returns the run id and its log file."""
    run_id = run_id or new_run_id()
    commands = replay_commands(root, request, run_id)
    log = root / "replay_logs" / f"{run_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    thread = threading.Thread(target=_run_all, args=(commands, log), name=f"replay-{run_id}", daemon=True)
    thread.start()
    logger.info("replay started run=%s commands=%d log=%s", run_id, len(commands), log)
    return run_id, log


def _run_all(commands: list[list[str]], log: Path) -> None:
    with open(log, "a") as out:
        for command in commands:
            out.write("$ " + " ".join(command[1:]) + "\n")
            out.flush()
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy(), check=False)
            if done.returncode != 0:
                out.write(f"exit {done.returncode}: stopped\n")
                return
        out.write("done\n")
