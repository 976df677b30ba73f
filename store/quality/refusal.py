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
from dataclasses import replace

from store.quality.rules import Rule, Rules, RuleSet
from store.quality.rules_en import EN_1, HEDGING_EN_1

HEAD_CHARS = 300  # refusals say so up front; reading more costs time and finds answers' caveats
# Finish reasons (lowercased) that mean the provider itself withheld or cut the answer for policy.
REFUSAL_FINISH_REASONS = frozenset({"content_filter", "refusal", "safety", "prohibited_content", "blocklist", "spii"})
RULE_SETS: dict[str, RuleSet] = {EN_1.name: EN_1}
HEDGING_SETS: dict[str, tuple[Rule, ...]] = {EN_1.name: HEDGING_EN_1}
_QUOTES = "\"'“‘«„`>"
_MARKUP = re.compile(r"^[\s*_#>~-]+")
_APOSTROPHES = (("’", "'"), ("‘", "'"), ("`", "'"), ("\u00a0", " "))
_SPACES = re.compile(r"\s+")
_QUOTED = re.compile(r'"[^"\n]{0,300}"|“[^”\n]{0,300}”')  # a refusal quoted in an answer is not the model's own
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


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
    rules = rules or DEFAULT_RULES
    head, words = _read(text, rules)
    if not head:
        return None
    for rule_set, matcher, trigger in zip(rules.refusal, rules.matchers, rules.trigger_words, strict=True):
        if matcher is None or trigger.isdisjoint(words):
            continue  # no rules, or none of the words a rule of this set needs: most answers stop here
        found = _lexical(head, rule_set, matcher)
        if found is not None:
            return found
    return None


def detect_hedging(text: str | None, *, rules: Rules | None = None) -> str | None:
    """The id of the hedging rule that fired on the start of the output, or None."""
    rules = rules or DEFAULT_RULES
    head, words = _read(text, rules)
    if not head or (not words and rules.hedging_needs_words):
        return None
    for rule, hints in zip(rules.hedging, rules.hint_words, strict=True):
        if hints and hints.isdisjoint(words):
            continue  # every match contains a hint: a set test instead of a regex search that cannot match
        if rule.min_count > 1:
            # Every match contains a hint, so fewer hint occurrences than min_count cannot fire.
            enough = sum(head.count(hint) for hint in rule.hints) >= rule.min_count
            if enough and len(rule.pattern.findall(head)) >= rule.min_count:
                return rule.id
        elif rule.pattern.search(head):
            return rule.id
    return None


# The last output read: detect_refusal and detect_hedging read the same one, one after the other
# (store.quality.quality_columns). A tuple, so threads swap it whole.
_last_read: tuple[str | None, Rules | None, str, frozenset[str]] = (None, None, "", frozenset())


def _read(text: str | None, rules: Rules) -> tuple[str, frozenset[str]]:
    """The head of `text` (`_head`) and the trigger words and hints of `rules` in it."""
    global _last_read
    last = _last_read
    if last[0] is text and last[1] is rules:
        return last[2], last[3]
    head = _head(text)
    words = rules.words.found_in(head) if head else frozenset()
    _last_read = (text, rules, head, words)
    return head, words


def _head(text: str | None) -> str:
    """The start of the output, lowercased, with plain apostrophes and single spaces; '' for
    outputs that are not prose addressed to the user (JSON, code, a quotation)."""
    if not text:
        return ""
    head = text[:HEAD_CHARS]
    markup = _MARKUP.match(head)
    if markup:
        head = head[markup.end() :]
    if not head or head[0] in _QUOTES or head[0] in "{[<":
        return ""
    if '"' in head or "“" in head:
        head = _QUOTED.sub("«quote»", head)
    for fancy, plain in _APOSTROPHES:
        if fancy in head:  # str.replace only where needed: translate() walks every character in Python
            head = head.replace(fancy, plain)
    return head.lower()


def _clauses(head: str, rule_set: RuleSet) -> Iterator[tuple[str, str]]:
    """(clause, the clause after it when a "but" joins them) for the first two sentences, openers stripped."""
    for sentence in _SENTENCE_END.split(head, maxsplit=2)[:2]:
        sentence = _SPACES.sub(" ", sentence).strip()
        # split() with one group interleaves: clause, turn-or-None, clause, turn-or-None, ...
        pieces = rule_set.clause_split.split(sentence)
        clauses, turns = pieces[0::2], pieces[1::2]
        for index, clause in enumerate(clauses):
            opener = rule_set.openers.match(clause)
            while opener and opener.end():  # openers stack: "Sorry, unfortunately, ..."
                clause = clause[opener.end() :]
                opener = rule_set.openers.match(clause)
            turned = index < len(turns) and turns[index] is not None
            yield clause, clauses[index + 1] if turned else ""


def _lexical(head: str, rule_set: RuleSet, matcher: re.Pattern[str]) -> str | None:
    """The rule of `rule_set` that fires on `head` (which holds one of its trigger words), or None."""
    for clause, rest in _clauses(head, rule_set):
        found = matcher.match(clause)
        if found is None or any(veto.search(clause) for veto in rule_set.vetoes):
            continue
        rule = rule_set.rules[int(found.lastgroup[1:])]  # type: ignore[index]
        if rule.caveat_able and rule_set.caveat.match(rest):
            continue  # "I can't give legal advice, but in general ...": an answer with a caveat
        return rule.id
    return None
