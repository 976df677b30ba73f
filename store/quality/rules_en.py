"""English refusal and hedging rules, version 1 (`en@1`).

Patterns see a lowercased clause with plain apostrophes, openers already stripped, and match at
its start. They were written against the `dev` split of sample_data/quality/refusal_eval.jsonl.
"""

from __future__ import annotations

import re

from store.quality.rules import Rule, RuleSet

# The ways to say "I can't" / "I won't" / "I'm not allowed to", subject included.
_CANT = (
    r"i (?:can ?not|can't|cant|could not|couldn't)(?: and (?:will not|won't))?|i(?:'m| am) (?:unable|not able) to"
    r"|i (?:will not|won't) be able to|i(?:'m| am) not going to be able to|i(?:'m| am) afraid i (?:can't|cannot)"
)
_WONT = r"i (?:will not|won't|refuse to)(?: be)?|i(?:'m| am) not going to"
_PERMITTED = r"i(?:'m| am) (?:not (?:allowed|permitted|authorized|supposed) to|prohibited from)"
_I_AM = r"i(?:'m| am)"
# What an assistant declines to do; the verbs a caveat or a figure of speech does not use.
_ACT = (  # stems: "provid" is provide and providing
    r"(?:help|assist|aid|support|provid|giv|shar|writ|creat|generat|produc|fulfil|compl(?:y|ying)|complet|continu"
    r"|discuss|reveal|disclos|process|access|mak|draft|compos|translat|engag|offer|recommend|answer|look (?:up|into)"
    r"|cod|build|design|facilitat|particip|condon|endors|encourag|promot|do (?:that|this|it|so)|go along|pass along"
    r"|hand over|send|issu|grant|perform|carry out|take part)"
)
# (id, pattern, caveat_able): see store.quality.rules.Rule.
_RULE_TABLE = (
    ("en.cannot_assist@1", rf"(?:{_CANT}) (?:really |currently |actually |directly )?{_ACT}", True),
    ("en.wont@1", rf"(?:{_WONT}) (?:able to )?{_ACT}", False),
    ("en.not_permitted@1", rf"(?:{_PERMITTED}) {_ACT}", False),
    ("en.decline@1", r"i (?:must|have to|need to|will|'ll|'m going to|am going to)? ?"
                     r"(?:respectfully |politely )?(?:decline|refuse)\b", False),
    ("en.not_comfortable@1", rf"(?:i (?:do not|don't) feel|{_I_AM} not) comfortable {_ACT}", False),
    ("en.should_not@1", rf"i (?:do not|don't) think i (?:should|can|could) {_ACT}", False),
    ("en.as_an_ai@1", r"as an ai\b[^.!?]{0,80}?\bi "
                      r"(?:cannot|can't|must|am not|'m not|do not|don't|won't|will not|am unable)", False),
    ("en.not_something_i_can@1", rf"(?:that|this)(?: is|'s) (?:not|n't) something "
                                 rf"(?:i (?:can|will|could)|{_I_AM} able to|i'll) (?:\w+ )?(?:{_ACT}|do\b)", False),
    ("en.outside_scope@1", r"(?:that|this|it)(?: is|'s)(?: a bit)? (?:outside|beyond) "
                           r"(?:what i(?:'m| am) (?:allowed|able|permitted)|the scope of what i"
                           r"|my (?:scope|remit|guidelines))", False),
    ("en.inappropriate@1", r"it (?:would not|wouldn't|would be in)(?: be)? "
                           r"(?:appropriate|right|ethical|responsible) for me to", False),
    ("en.policy@1", r"(?:this|that|your) (?:request|prompt|content) "
                    r"(?:violates|goes against|is against|breaks|is not allowed by|isn't allowed by)", False),
    ("en.only_scope@1", r"i (?:can|am able to|'m able to) only (?:help|assist|answer|discuss|support)", False),
    ("en.no_capability@1", rf"i (?:do not|don't) have (?:the ability|access|the capability|permission) to"
                           rf"|(?:{_CANT}) (?:browse|access the internet|search the web|make (?:phone )?calls)", True),
    ("en.pass@1", r"i(?:'m| am) going to (?:have to )?pass on (?:this|that)|i(?:'ll| will) have to pass on", False),
)  # fmt: skip
_RULES = tuple(Rule(rule_id, re.compile(pattern), caveat_able) for rule_id, pattern, caveat_able in _RULE_TABLE)
_OPENERS = re.compile(
    r"^(?:(?:i'm|i am|i'm really|i am really|i'm so|i'm very|so|really|very) sorry|sorry|apologies|my apologies"
    r"|i apologi[sz]e|i'm afraid|i am afraid|unfortunately|regrettably|sadly|hmm+|oh|no|ah|well|okay|ok|thanks"
    r"|thank you|(?:while )?i (?:understand|appreciate|hear|see|know)[^,]{0,60},"
    r"|i'm an ai(?: assistant| language model| model)?(?: and)?|i am an ai(?: assistant| language model)?"
    r"|due to (?:safety|security|privacy|ethical|legal) (?:concerns|reasons|considerations)"
    r"|for (?:safety|security|privacy|ethical|legal) reasons|i understand|at this time|however|but"
    r"|as (?:a|an) [^,.]{2,60}?(?:assistant|bot|agent|model)[^,.]{0,40},)(?![\w'])[,!.:\s—–-]*"
)
_CLAUSE_SPLIT = re.compile(r",? but |; however,? |, however,? | — but ")
# After "but": an offer of something else keeps the refusal; anything else is the answer it caveats.
_CAVEAT = re.compile(
    r"^(?!i(?:'d|'ll| would| will| can| could| am| 'm|'m)?\b|happy to|glad to|feel free"
    r"|you (?:can|could|may|might|should)|please|let me|if you|maybe|perhaps|there are|consider"
    r"|here are some (?:resources|alternatives)|what i can)\S"
)
_VETOES = (
    re.compile(r"\benough\b"),  # "I cannot recommend it highly enough"
    re.compile(r"^i (?:can't|cannot) (?:wait|stress|believe|overstate|emphasi[sz]e|thank|imagine)"),
)
EN_1 = RuleSet("en@1", _RULES, _OPENERS, _CLAUSE_SPLIT, _CAVEAT, _VETOES)

_HEDGE_WORDS = (
    r"might|may|possibly|perhaps|probably|likely|unclear|uncertain|arguably|could be|not necessarily|roughly"
    r"|approximately|in some cases"
)
_HEDGING_TABLE = (
    ("en.hedge.not_sure@1", r"\bi(?:'m| am) (?:not (?:entirely |completely |100% )?(?:sure|certain)|unsure)\b"),
    ("en.hedge.dont_know@1", r"\bi (?:do not|don't) (?:really )?know\b|\bi have no (?:way of knowing|idea)\b"),
    ("en.hedge.cant_be_sure@1", r"\bi (?:can't|cannot) (?:be (?:sure|certain)|say (?:for sure|for certain|definitively)"
                                r"|guarantee)"),
    ("en.hedge.it_depends@1", r"(?:^|[.!?] )it (?:really |all )?depends\b"),
    ("en.hedge.not_a_professional@1", r"\bi(?:'m| am) not an? (?:doctor|lawyer|attorney|financial (?:adviser|advisor)"
                                      r"|medical professional|expert)\b"),
    ("en.hedge.may_be_wrong@1", r"\bi (?:may|might|could) be (?:wrong|mistaken)\b"
                                r"|\btake (?:this|that) with a grain of salt"),
    # Piled-up caveats: four or more hedge words in the first ~300 characters.
    ("en.hedge.caveats@1", rf"(?:.*?\b(?:{_HEDGE_WORDS})\b){{4}}"),
)  # fmt: skip
HEDGING_EN_1 = tuple(Rule(rule_id, re.compile(pattern, re.S)) for rule_id, pattern in _HEDGING_TABLE)
