"""The shape of a lexical rule set (data only; `store.quality.refusal` applies them)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rule:
    id: str  # "<lang>.<name>@<version>": stored with each verdict, so bump the version when it changes
    pattern: re.Pattern[str]  # matched at the start of a lowercased clause (hedging: searched in the head)
    caveat_able: bool = False  # "I can't X, but <an answer>" is an answer with a caveat, not a refusal
    min_count: int = 1  # hedging: fires when the pattern occurs at least this often in the head
    hints: tuple[str, ...] = ()  # hedging: substrings one of which any match contains (a cheap pre-check)


@dataclass(frozen=True, slots=True)
class RuleSet:
    name: str  # "<lang>@<version>", what `[quality] refusal_rule_sets` names
    rules: tuple[Rule, ...]
    openers: re.Pattern[str]  # stripped from a clause start: "i'm sorry, but ", "unfortunately, "
    clause_split: re.Pattern[str]  # where clauses part; group 1 marks a turn (", but ") the caveat test reads
    caveat: re.Pattern[str]  # the clause after "but" is an answer, not an offer of something else
    vetoes: tuple[re.Pattern[str], ...]  # a clause matching one of these is never a refusal
    # Substrings one of the rules needs: a head without any is no refusal, and most answers stop here.
    trigger: tuple[str, ...] = ("",)
