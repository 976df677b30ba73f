"""`vigil sim-llm`: the simulated OpenAI-compatible model server (replay/simulator.py) in the foreground."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import TYPE_CHECKING

from store.config import ConfigError

if TYPE_CHECKING:  # imported where used: every `vigil` command builds this parser, few run the simulator
    from replay.simulator import SimulatedLLM

logger = logging.getLogger(__name__)
DEFAULT_LISTEN = "127.0.0.1:8600"  # clear of OTLP's 4317/4318 and Streamlit's 8501
# Simulated speed: enough for latency and time-to-first-token charts to show something.
FIRST_TOKEN_MS, TOKEN_MS = 150.0, 5.0


def add_commands(commands) -> None:
    sim = commands.add_parser(
        "sim-llm",
        help="run a SIMULATED OpenAI-compatible model server on loopback (no API key, no network)",
        description="Serve POST /v1/chat/completions (plain and streaming) and GET /v1/models on loopback with "
        "answers from fixed, documented rules that depend on the prompt (replay/simulator.py): a simulator for "
        "demos and replay tests, not a model. Point an OpenAI client at it with OPENAI_BASE_URL=http://HOST:PORT/v1 "
        "and any OPENAI_API_KEY.",
    )
    sim.add_argument("--listen", metavar="HOST:PORT", default=DEFAULT_LISTEN,
                     help=f"loopback address (default {DEFAULT_LISTEN}; port 0 = any free port)")  # fmt: skip
    sim.add_argument("--model", action="append", default=[], metavar="NAME",
                     help="serve another model name too (repeatable); it answers like vigil-sim")  # fmt: skip
    sim.add_argument("--first-token-ms", type=float, default=FIRST_TOKEN_MS,
                     help=f"simulated time to first token (default {FIRST_TOKEN_MS:g})")  # fmt: skip
    sim.add_argument("--token-ms", type=float, default=TOKEN_MS,
                     help=f"simulated time per output token (default {TOKEN_MS:g})")  # fmt: skip
    sim.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], default="INFO")
    sim.set_defaults(run=run_sim_llm)


def parse_listen(listen: str, flag: str = "--listen") -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{flag} {listen!r}: use HOST:PORT, e.g. {DEFAULT_LISTEN}")
    return host, int(port)


def run_sim_llm(args: argparse.Namespace) -> int:
    from replay.simulator import MODELS, SimulatedLLM

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    models = dict(MODELS) | {name: "vigil-sim" for name in args.model if name not in MODELS}
    try:
        host, port = parse_listen(args.listen)
        llm = SimulatedLLM(host, port, models=models, first_token_s=args.first_token_ms / 1000,
                           token_delay_s=args.token_ms / 1000)  # fmt: skip
    except (ValueError, OSError) as exc:
        print(f"vigil sim-llm: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with llm:
        print(
            f"vigil sim-llm: a SIMULATED OpenAI-compatible model server (rule-based answers, not a model)\n"
            f"  {llm.base_url}  ({len(models)} model names: GET /v1/models; Ctrl-C to stop)\n"
            f"  export OPENAI_BASE_URL={llm.base_url} OPENAI_API_KEY=sim",
            flush=True,
        )
        stop.wait()
    return 0


def add_up_arguments(up: argparse.ArgumentParser) -> None:
    up.add_argument("--sim-llm-listen", metavar="HOST:PORT",
                    help=f"where --demo runs the simulated model server (default {DEFAULT_LISTEN}, or any free port "
                    "when that one is taken)")  # fmt: skip


def simulator_for_up(listen: str | None) -> SimulatedLLM:
    """The simulator for `vigil up --demo` (not started): on `listen`, else the default address, else any free port."""
    from replay.simulator import SimulatedLLM

    speed = {"first_token_s": FIRST_TOKEN_MS / 1000, "token_delay_s": TOKEN_MS / 1000}
    try:
        host, port = parse_listen(listen or DEFAULT_LISTEN, "--sim-llm-listen")
        try:
            llm = SimulatedLLM(host, port, **speed)
        except OSError as exc:
            if listen:
                raise ValueError(f"--sim-llm-listen {listen}: {exc.strerror}; choose another port") from None
            logger.warning("%s is taken; the simulated model server takes any free port", DEFAULT_LISTEN)
            llm = SimulatedLLM(host, 0, **speed)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return llm
