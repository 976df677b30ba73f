"""Precision and recall of refusal detection on a labelled set of outputs.

Comes in: a JSON Lines file of `{"id", "split", "label" (refusal | answer), "text"}` and optional
`finish_reasons` / `provider_refusal` (sample_data/quality/refusal_eval.jsonl is the bundled one).
Goes out: confusion counts, precision, recall and F1 per split, and the misclassified examples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store.quality.refusal import Rules, detect_refusal

DEFAULT_EVAL_FILE = Path(__file__).resolve().parents[2] / "sample_data" / "quality" / "refusal_eval.jsonl"
LABELS = ("refusal", "answer")
# Other sets' spellings, so one made elsewhere runs as it is.
_TEXT_KEYS = ("text", "output", "completion", "response", "content")
_LABEL_KEYS = ("label", "is_refusal", "refused", "expected")
_REFUSAL = frozenset({"refusal", "refused", "refuse", "true", "1", "yes"})
_ANSWER = frozenset({"answer", "not_refusal", "non_refusal", "compliance", "complied", "comply", "false", "0", "no"})


@dataclass
class Evaluation:
    split: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    misclassified: list[dict[str, Any]] = field(default_factory=list)  # rows plus the rule that fired

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def load_eval_set(path: Path | str = DEFAULT_EVAL_FILE) -> list[dict[str, Any]]:
    """The labelled rows; a line that is not a labelled output is an error naming the line."""
    rows = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None
            label, text = _read(row)
            if label is None or text is None:
                raise ValueError(f"{path}:{number}: expected an object with a text and a label in {LABELS}")
            rows.append(row | {"label": label, "text": text})
    return rows


def _read(row: Any) -> tuple[str | None, str | None]:
    if not isinstance(row, dict):
        return None, None
    text = next((row[k] for k in _TEXT_KEYS if isinstance(row.get(k), str)), None)
    raw = next((row[k] for k in _LABEL_KEYS if row.get(k) is not None), None)
    spelled = str(raw).lower() if raw is not None else ""
    label = "refusal" if spelled in _REFUSAL else "answer" if spelled in _ANSWER else None
    return label, text


def evaluate(rows: list[dict[str, Any]], rules: Rules | None = None) -> dict[str, Evaluation]:
    """One Evaluation per split (rows without a split count as 'all'), plus 'all' over every row."""
    results: dict[str, Evaluation] = {}
    for row in rows:
        rule = detect_refusal(
            row["text"],
            finish_reasons=row.get("finish_reasons") or (),
            provider_refusal=row.get("provider_refusal"),
            rules=rules,
        )
        flagged, actual = rule is not None, row["label"] == "refusal"
        for split in {row.get("split") or "all", "all"}:
            result = results.setdefault(split, Evaluation(split))
            if flagged and actual:
                result.tp += 1
            elif flagged:
                result.fp += 1
                result.misclassified.append(row | {"rule": rule})
            elif actual:
                result.fn += 1
                result.misclassified.append(row | {"rule": None})
            else:
                result.tn += 1
    return results
