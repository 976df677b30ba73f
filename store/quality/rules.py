"""The shape of a lexical rule set, and the active rules in the form the checks read them
(`store.quality.refusal` applies them).

`Rules` is a plain Python class, not compiled with the checks (setup.py): its `cached_property`s
need an instance `__dict__`, which a mypyc class does not have.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import re2


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


@dataclass(frozen=True)
class Rules:
    """The active rule sets and hedging rules (see `compile_rules`)."""

    refusal: tuple[RuleSet, ...]
    hedging: tuple[Rule, ...]

    @cached_property
    def matchers(self) -> tuple[re.Pattern[str] | None, ...]:
        """Per rule set, its rules as one alternation (group rN is rule N): one match per clause, not one
        per rule. Compiled on first use (~60 ms), not on import: every process loads the config."""
        return tuple(
            re.compile("|".join(f"(?P<r{i}>{r.pattern.pattern})" for i, r in enumerate(s.rules))) if s.rules else None
            for s in self.refusal
        )

    @cached_property
    def words(self) -> Words:
        """Every trigger substring of the rule sets and every hedging hint, found in one linear-time RE2 pass
        (~1.5 µs per head, where a scan for the triggers and another for the hints took ~4.5)."""
        return Words((*(t for s in self.refusal for t in s.trigger), *(h for r in self.hedging for h in r.hints)))

    @cached_property
    def trigger_words(self) -> tuple[frozenset[str], ...]:
        return tuple(frozenset(s.trigger) for s in self.refusal)

    @cached_property
    def hint_words(self) -> tuple[frozenset[str], ...]:
        return tuple(frozenset(rule.hints) for rule in self.hedging)

    @cached_property
    def hedging_needs_words(self) -> bool:
        """Every hedging rule has hints: a head without any cannot hedge (most heads, so no loop over the rules)."""
        return all(rule.hints for rule in self.hedging)


class Words:
    """Which of a fixed list of substrings occur in a text."""

    def __init__(self, substrings: Iterable[str]) -> None:
        self._substrings = tuple(dict.fromkeys(substrings))
        options = re2.Options()
        options.literal = True
        self._set = re2.Set.SearchSet(options)
        for text in self._substrings:
            self._set.Add(text)
        self._set.Compile()

    def __reduce__(self) -> tuple[type[Words], tuple[tuple[str, ...]]]:
        return Words, (self._substrings,)  # an RE2 set does not pickle: compiled again where it is unpickled

    def found_in(self, text: str) -> frozenset[str]:
        found = self._set.Match(text)
        return frozenset(self._substrings[i] for i in found) if found else frozenset()
