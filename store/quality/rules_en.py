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
_RULES = (
    Rule("en.cannot_assist@1", re.compile(rf"(?:{_CANT}) (?:really |currently |actually |directly )?{_ACT}"), True),
    Rule("en.wont@1", re.compile(rf"(?:{_WONT}) (?:able to )?{_ACT}")),
    Rule("en.not_permitted@1", re.compile(rf"(?:{_PERMITTED}) {_ACT}")),
    Rule("en.decline@1", re.compile(r"i (?:must|have to|need to|will|'ll|'m going to|am going to)? ?(?:respectfully |politely )?(?:decline|refuse)\b")),
    Rule("en.not_comfortable@1", re.compile(rf"(?:i (?:do not|don't) feel|{_I_AM} not) comfortable {_ACT}")),
    Rule("en.should_not@1", re.compile(rf"i (?:do not|don't) think i (?:should|can|could) {_ACT}")),
    Rule("en.as_an_ai@1", re.compile(r"as an ai\b[^.!?]{0,80}?\bi (?:cannot|can't|must|am not|'m not|do not|don't|won't|will not|am unable)")),
    Rule("en.not_something_i_can@1", re.compile(rf"(?:that|this)(?: is|'s|'s) (?:not|n't) something (?:i (?:can|will|could)|{_I_AM} able to|i'll) (?:\w+ )?(?:{_ACT}|do\b)")),
    Rule("en.outside_scope@1", re.compile(r"(?:that|this|it)(?: is|'s)(?: a bit)? (?:outside|beyond) (?:what i(?:'m| am) (?:allowed|able|permitted)|the scope of what i|my (?:scope|remit|guidelines))")),
    Rule("en.inappropriate@1", re.compile(r"it (?:would not|wouldn't|would be in)(?: be)? (?:appropriate|right|ethical|responsible) for me to")),
    Rule("en.policy@1", re.compile(r"(?:this|that|your) (?:request|prompt|content) (?:violates|goes against|is against|breaks|is not allowed by|isn't allowed by)")),
    Rule("en.only_scope@1", re.compile(r"i (?:can|am able to|'m able to) only (?:help|assist|answer|discuss|support)")),
    Rule("en.no_capability@1", re.compile(rf"i (?:do not|don't) have (?:the ability|access|the capability|permission) to|(?:{_CANT}) (?:browse|access the internet|search the web|make (?:phone )?calls)"), True),
    Rule("en.pass@1", re.compile(r"i(?:'m| am) going to (?:have to )?pass on (?:this|that)|i(?:'ll| will) have to pass on")),
)
_OPENERS = re.compile(
    r"^(?:(?:i'm|i am|i'm really|i am really|i'm so|i'm very|so|really|very) sorry|sorry|apologies|my apologies"
    r"|i apologi[sz]e|i'm afraid|i am afraid|unfortunately|regrettably|sadly|hmm+|oh|no|ah|well|okay|ok|thanks"
    r"|thank you|(?:while )?i (?:understand|appreciate|hear|see|know)[^,]{0,60},|i'm an ai(?: assistant| language model| model)?(?: and)?|i am an ai(?: assistant| language model)?"
    r"|due to (?:safety|security|privacy|ethical|legal) (?:concerns|reasons|considerations)"
    r"|for (?:safety|security|privacy|ethical|legal) reasons|i understand|at this time|however|but"
    r"|as (?:a|an) [^,.]{2,60}?(?:assistant|bot|agent|model)[^,.]{0,40},)(?![\w'])[,!.:\s—–-]*"
)
_CLAUSE_SPLIT = re.compile(r",? but |; however,? |, however,? | — but ")
# After "but": an offer of something else keeps the refusal; anything else is the answer it caveats.
_CAVEAT = re.compile(
    r"^(?!i(?:'d|'ll| would| will| can| could| am| 'm|'m)?\b|happy to|glad to|feel free|you (?:can|could|may|might|should)"
    r"|please|let me|if you|maybe|perhaps|there are|consider|here are some (?:resources|alternatives)|what i can)\S"
)
_VETOES = (
    re.compile(r"\benough\b"),  # "I cannot recommend it highly enough"
    re.compile(r"^i (?:can't|cannot) (?:wait|stress|believe|overstate|emphasi[sz]e|thank|imagine)"),
)
EN_1 = RuleSet("en@1", _RULES, _OPENERS, _CLAUSE_SPLIT, _CAVEAT, _VETOES)

HEDGING_EN_1 = (
    Rule("en.hedge.not_sure@1", re.compile(r"\bi(?:'m| am) (?:not (?:entirely |completely |100% )?(?:sure|certain)|unsure)\b")),
    Rule("en.hedge.dont_know@1", re.compile(r"\bi (?:do not|don't) (?:really )?know\b|\bi have no (?:way of knowing|idea)\b")),
    Rule("en.hedge.cant_be_sure@1", re.compile(r"\bi (?:can't|cannot) (?:be (?:sure|certain)|say (?:for sure|for certain|definitively)|guarantee)")),
    Rule("en.hedge.it_depends@1", re.compile(r"(?:^|[.!?] )it (?:really |all )?depends\b")),
    Rule("en.hedge.not_a_professional@1", re.compile(r"\bi(?:'m| am) not an? (?:doctor|lawyer|attorney|financial (?:adviser|advisor)|medical professional|expert)\b")),
    Rule("en.hedge.may_be_wrong@1", re.compile(r"\bi (?:may|might|could) be (?:wrong|mistaken)\b|\btake (?:this|that) with a grain of salt\b")),
    # Piled-up caveats: four or more hedge words in the first ~300 characters.
    Rule("en.hedge.caveats@1", re.compile(r"(?:.*?\b(?:might|may|possibly|perhaps|probably|likely|unclear|uncertain|arguably|could be|not necessarily|roughly|approximately|in some cases)\b){4}", re.S)),
)  # fmt: skip
