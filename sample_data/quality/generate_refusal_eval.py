"""Build the labelled refusal evaluation set: realistic LLM outputs, each marked refusal or not.

Comes in: nothing but the pools in eval_pools.py (hand-written; a fixed seed pairs some pieces). Goes out:
`refusal_eval.jsonl`, one `{"id", "split", "label", "category", "text"}` a line, where label is
`refusal` or `answer` and split is `dev` (used while writing the rules), `heldout` (evaluated
only once the rules were done: dev and held-out both scored 1.000 precision and recall then) or
`probe` (written afterwards to probe phrasings the set lacked; see PROBE_REFUSALS). The split is
made per hand-written piece, before any pairing, so a held-out example never shares its refusal
sentence or its trap opener with a dev example.

What counts as a refusal: the model declines the request (policy, safety, privacy, "I can't do
that"), including declines that offer an alternative. An answer with a caveat ("I can't give legal
advice, but in general ...") answers, so it is not one; nor is an apology, sympathy, a report
that a tool or lookup failed, a quoted refusal, or fiction in which a character says "I can't".

    uv run python sample_data/quality/generate_refusal_eval.py [--out sample_data/quality/refusal_eval.jsonl]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from pathlib import Path

from eval_pools import (  # noqa: I001 - the pools sit beside this script
    ANSWERS,
    CAVEAT_ANSWERS,
    JSON_ANSWERS,
    PROBE_ANSWERS,
    PROBE_REFUSALS,
    REFUSAL_CORES,
    REFUSAL_OPENERS,
    REFUSAL_REDIRECTS,
    REFUSALS,
    TRAP_BODIES,
    TRAP_OPENERS,
    TRAPS,
)

DEFAULT_OUT = Path(__file__).parent / "refusal_eval.jsonl"
SEED = 20261201


def split_of(index: int) -> str:
    """Every third hand-written piece is held out."""
    return "heldout" if index % 3 == 2 else "dev"


def by_split(pool: list) -> dict[str, list]:
    out: dict[str, list] = {"dev": [], "heldout": []}
    for index, item in enumerate(pool):
        out[split_of(index)].append(item)
    return out


def build() -> list[dict[str, str]]:
    rng = random.Random(SEED)
    rows: list[tuple[str, str, str, str]] = []  # split, label, category, text
    for pool, label, category in (
        (REFUSALS, "refusal", "refusal"),
        (TRAPS, "answer", "trap"),
        (ANSWERS, "answer", "answer"),
        (CAVEAT_ANSWERS, "answer", "caveat_answer"),
    ):
        rows += [(split_of(i), label, category, text) for i, text in enumerate(pool)]
    rows += [
        (split_of(i), "answer", "json", json.dumps(obj, indent=i % 2 or None)) for i, obj in enumerate(JSON_ANSWERS)
    ]
    # Composed refusals: an optional opener, a core refusal, an optional redirect (each split apart).
    openers, cores, redirects = by_split(REFUSAL_OPENERS), by_split(REFUSAL_CORES), by_split(REFUSAL_REDIRECTS)
    for split in ("dev", "heldout"):
        for core in cores[split]:
            opener = rng.choice(openers[split] + [""])
            redirect = rng.choice(redirects[split] + ["", ""])
            text = " ".join(p for p in (opener, core, redirect) if p)
            rows.append((split, "refusal", "refusal_composed", text[0].upper() + text[1:]))
    # Composed traps: a refusal-looking opener followed by a real answer.
    trap_openers, bodies = by_split(TRAP_OPENERS), by_split(TRAP_BODIES)
    for split in ("dev", "heldout"):
        for opener in trap_openers[split]:
            rows.append((split, "answer", "trap_composed", f"{opener} {rng.choice(bodies[split])}"))
    rows += [("probe", "refusal", "refusal", text) for text in PROBE_REFUSALS]
    rows += [("probe", "answer", "trap", text) for text in PROBE_ANSWERS]
    out = []
    for split, label, category, text in rows:
        digest = hashlib.blake2b(text.encode(), digest_size=5).hexdigest()
        out.append({"id": f"{category}-{digest}", "split": split, "label": label, "category": category, "text": text})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    rows = build()
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate outputs in the pools"
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    counts = {(r["split"], r["label"]): 0 for r in rows}
    for r in rows:
        counts[r["split"], r["label"]] += 1
    print(f"wrote {len(rows)} outputs to {args.out}: " + ", ".join(f"{s}/{lab}={n}" for (s, lab), n in counts.items()))


if __name__ == "__main__":
    main()
