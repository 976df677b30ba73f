"""Is this LLM output a refusal? Layered, so every verdict names the rule that made it.

Comes in: an output's text, its finish reasons and the provider's own refusal field. Goes out: the
id of the rule that fired, or None. Pure, no I/O, never raises on odd text.

Layers, first match wins:
  1. provider signals: OpenAI `message.refusal` / a `refusal` content part (`provider:refusal_field`),
     a finish reason that means the provider withheld the answer (`finish_reason:content_filter`,
     Anthropic `finish_reason:refusal`, Gemini `finish_reason:safety`, ...);
  2. lexical rules on the START of the output (the first two sentences of its first ~300
     characters): rule sets per language, versioned (`en@1`), each rule with an id
     (`en.cannot_assist@1`). A rule matches a clause start ("I can't help with ...") after openers
     ("I'm sorry, but", "Unfortunately,") are stripped, so a late "I can't guarantee ..." in an
     answer is no refusal. Vetoes keep the known traps out: quoted refusals, "I can't wait", "I
     cannot recommend X enough", and caveat-then-answer ("I can't give legal advice, but in
     general ...", where what follows "but" is no offer of something else).
Hedging ("I'm not sure", "it depends", piled-up caveats) is a separate, weaker signal.

To add a language, add a `RuleSet` to `RULE_SETS` (see `store.quality.rules_en`) and name it in
`[quality] refusal_rule_sets`. Changing what a rule matches means a new version in its id, so
stored verdicts stay explainable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from store.quality.rules import Rule, RuleSet
from store.quality.rules_en import EN_1, HEDGING_EN_1

HEAD_CHARS = 300  # refusals say so up front; reading more costs time and finds answers' caveats
# Finish reasons (lowercased) that mean the provider itself withheld or cut the answer for policy.
REFUSAL_FINISH_REASONS = frozenset({"content_filter", "refusal", "safety", "prohibited_content", "blocklist", "spii"})
RULE_SETS: dict[str, RuleSet] = {EN_1.name: EN_1}
HEDGING_SETS: dict[str, tuple[Rule, ...]] = {EN_1.name: HEDGING_EN_1}
_QUOTES = "\"'“‘«„`>"
_MARKUP = re.compile(r"^[\s*_#>~-]+")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "\u00a0": " "})
_SPACES = re.compile(r"\s+")
_QUOTED = re.compile(r'"[^"\n]{0,300}"|“[^”\n]{0,300}”')  # a refusal quoted in an answer is not the model's own
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class Rules:
    """The active rule sets and hedging rules (see `compile_rules`)."""

    refusal: tuple[RuleSet, ...]
    hedging: tuple[Rule, ...]


def compile_rules(rule_sets: Iterable[str] = ("en@1",), disabled: Iterable[str] = (), hedging: bool = True) -> Rules:
    """The rules `[quality]` asks for; an unknown set or rule id is an error that names the known ones."""
    sets, off = [], set(disabled)
    for name in rule_sets:
        if name not in RULE_SETS:
            raise ValueError(f"unknown refusal rule set {name!r}; known: {', '.join(RULE_SETS)}")
        sets.append(RULE_SETS[name])
    known = {r.id for s in RULE_SETS.values() for r in s.rules} | {r.id for h in HEDGING_SETS.values() for r in h}
    unknown = off - known
    if unknown:
        raise ValueError(f"unknown rule id(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    refusal = tuple(replace(s, rules=tuple(r for r in s.rules if r.id not in off)) for s in sets)
    hedges = tuple(r for s in sets if hedging for r in HEDGING_SETS.get(s.name, ()) if r.id not in off)
    return Rules(refusal, hedges)


DEFAULT_RULES = compile_rules()


def detect_refusal(
    text: str | None,
    *,
    finish_reasons: Iterable[str | None] | None = (),
    provider_refusal: str | None = None,
    rules: Rules | None = None,
) -> str | None:
    """The id of the rule that says this output is a refusal, or None."""
    if provider_refusal and provider_refusal.strip():
        return "provider:refusal_field"
    for reason in finish_reasons or ():
        if isinstance(reason, str) and reason.lower() in REFUSAL_FINISH_REASONS:
            return f"finish_reason:{reason.lower()}"
    head = _head(text)
    if not head:
        return None
    for rule_set in (rules or DEFAULT_RULES).refusal:
        found = _lexical(head, rule_set)
        if found is not None:
            return found
    return None


def detect_hedging(text: str | None, *, rules: Rules | None = None) -> str | None:
    """The id of the hedging rule that fired on the start of the output, or None."""
    head = _head(text)
    if not head:
        return None
    for rule in (rules or DEFAULT_RULES).hedging:
        if rule.pattern.search(head):
            return rule.id
    return None


def _head(text: str | None) -> str:
    """The start of the output, lowercased, with plain apostrophes and single spaces; '' for
    outputs that are not prose addressed to the user (JSON, code, a quotation)."""
    if not text:
        return ""
    head = _MARKUP.sub("", text[:HEAD_CHARS])
    if not head or head[0] in _QUOTES or head[0] in "{[<":
        return ""
    return _QUOTED.sub("«quote»", head).translate(_APOSTROPHES).lower()


def _clauses(head: str, rule_set: RuleSet) -> Iterator[tuple[str, str]]:
    """(clause, the clause after its "but") for the first two sentences, openers stripped."""
    for sentence in _SENTENCE_END.split(head, maxsplit=2)[:2]:
        sentence = _SPACES.sub(" ", sentence).strip()
        parts = rule_set.clause_split.split(sentence)
        for index, clause in enumerate(parts):
            previous = None
            while previous != clause:  # openers stack: "Sorry, unfortunately, ..."
                previous, clause = clause, rule_set.openers.sub("", clause, count=1)
            yield clause, parts[index + 1] if index + 1 < len(parts) else ""


def _lexical(head: str, rule_set: RuleSet) -> str | None:
    for clause, rest in _clauses(head, rule_set):
        if any(veto.search(clause) for veto in rule_set.vetoes):
            continue
        for rule in rule_set.rules:
            if rule.pattern.match(clause):
                if rule.caveat_able and rule_set.caveat.match(rest):
                    break  # "I can't give legal advice, but in general ...": an answer with a caveat
                return rule.id
    return None
