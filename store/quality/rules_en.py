"""English refusal and hedging rules, version 1 (`en@1`).

Patterns see a lowercased clause with plain apostrophes, openers already stripped, and match at
its start. They were written against the `dev` split of sample_data/quality/refusal_eval.jsonl,
then extended for the phrasings its two `probe` rounds found missing.
"""

from __future__ import annotations

import re

from store.quality.rules import Rule, RuleSet

# The ways to say "I can't" / "I won't" / "I'm not allowed to", subject included.
_CANT = (
    r"i (?:can ?not|can't|cant)(?: and (?:will not|won't))?|i(?:'m| am) (?:unable|not able|not in a position) to"
    r"|i (?:will not|won't) be able to|i(?:'m| am) not going to be able to|i(?:'m| am) afraid i (?:can't|cannot)"
)
_WONT = r"i (?:will not|won't|refuse to)(?: be)?|i(?:'m| am) not going to|i(?:'d| would) (?:rather not|prefer not to)"
_PERMITTED = r"i(?:'m| am) (?:not (?:allowed|permitted|authorized|supposed) to|prohibited from)"
_I_AM = r"i(?:'m| am)"
# What an assistant declines to do; the verbs a caveat or a figure of speech does not use.
_ACT = (  # stems: "provid" is provide and providing
    r"(?:help|assist|aid|support|provid|giv|shar|writ|creat|generat|produc|fulfil|compl(?:y|ying)|complet|continu"
    r"|discuss|reveal|disclos|process|access|mak|draft|compos|translat|engag|offer|recommend|answer|look (?:up|into)"
    r"|cod|build|design|facilitat|particip|condon|endors|encourag|promot|do (?:that|this|it|so)|go along|pass along"
    r"|hand over|send|issu|grant|perform|carry out|take part|accommodat|entertain|honou?r|oblig)"
)
# (id, pattern, caveat_able): see store.quality.rules.Rule.
_RULE_TABLE = (
    ("en.cannot_assist@1", rf"(?:{_CANT}) (?:really |currently |actually |directly )?{_ACT}", True),
    ("en.wont@1", rf"(?:{_WONT}) (?:able to )?{_ACT}", False),
    ("en.not_permitted@1", rf"(?:{_PERMITTED}) {_ACT}", False),
    ("en.decline@1",
     r"i (?:must|have to|need to|will|'ll|'m going to|am going to|would|'d) (?:respectfully |politely )?decline\b"
     r"|i (?:respectfully |politely )decline\b|i refuse\b"
     r"|i decline (?:to (?:help|assist|answer|provid|writ|creat|generat|shar|continu|engag|particip|discuss)"
     r"|this|that|your|the request)", False),
    ("en.not_comfortable@1", rf"(?:i (?:do not|don't) feel|{_I_AM} not) comfortable {_ACT}", False),
    ("en.should_not@1", rf"i (?:do not|don't) think i (?:should|can|could) {_ACT}", False),
    ("en.as_an_ai@1",
     r"as an ai\b[^.!?]{0,80}?\bi (?:cannot|can't|must|am not|'m not|do not|don't|won't|will not|am unable)"
     r"|i(?:'m| am) (?:just |only )?(?:a|an) [^.!?]{0,40}?\b(?:ai|language model|assistant|chatbot)\b"
     r"[^.!?]{0,40}?\b(?:can't|cannot|can not|am unable|'m unable|am not able|'m not able|won't|don't)", False),
    ("en.not_something_i_can@1", rf"(?:that|this)(?: is|'s) (?:not|n't) (?:something|a request|a task|a question) "
                                 rf"(?:i (?:can|will|could)|{_I_AM} able to|i'll) (?:\w+ )?(?:{_ACT}|do\b)", False),
    ("en.something_i_cannot@1", rf"(?:that|this)(?: is|'s) (?:something|a request|a topic) (?:that )?"
                                rf"(?:{_CANT}|{_WONT}) (?:\w+ )?(?:{_ACT}|do\b)", False),
    ("en.outside_scope@1", r"(?:that|this|it|your request)(?: is|'s| falls)(?: a bit)? (?:outside|beyond) (?:of )?"
                           r"(?:what i(?:'m| am)? ?(?:can|allowed|able|permitted)|the scope of (?:what i|my)"
                           r"|my (?:scope|remit|guidelines|capabilities))", False),
    ("en.dont_do@1", r"i (?:do not|don't) (?:provide|offer|engage in|assist with|help with|create|generate|produce)"
                     r"\b(?: \w+){0,2} (?:assistance|help|content|information|advice|guidance|with|material)\b", False),
    ("en.inappropriate@1", r"it (?:would not|wouldn't|would be in)(?: be)? "
                           r"(?:appropriate|right|ethical|responsible) for me to", False),
    ("en.policy@1", r"(?:this|that|your) (?:request|prompt|content) "
                    r"(?:violates|goes against|is against|breaks|is not allowed by|isn't allowed by)", False),
    ("en.only_scope@1", r"i (?:can|am able to|'m able to) only (?:help|assist|answer|discuss|support)", False),
    ("en.no_capability@1",
     rf"i (?:do not|don't) have (?:the ability|access|the capability|permission) to"
     rf"|(?:{_CANT}) (?:browse|access the internet|search the web|make (?:phone )?calls)", True),
    ("en.against_principles@1",
     r"[^.!?]{0,80}?\b(?:would|will|does|is|'s) (?:go against|goes against|violate|be against|against|breach"
     r"|conflict with|not within) (?:my|our) (?:core )?(?:principles|guidelines|programming|values|polic(?:y|ies)"
     r"|ethical guidelines|content polic|usage polic)", False),
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
    r"|as (?:a|an) (?!ai\b)[^,.]{2,60}?(?:assistant|bot|agent|model)[^,.]{0,40},)(?![\w'])[,!.:\s—–-]*"
)
# Where a sentence turns (group 1: what follows may be the answer a caveat introduces) or goes on.
_CLAUSE_SPLIT = re.compile(r"(,? but |; however,? |, however,? | — but )|, so |, and ")
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
# Every rule above contains one of these substrings (keep it so when a rule changes).
_TRIGGER = (
    "cannot", "can not", "can't", "cant", "unable", "not able", "not in a position", "won't", "will not",
    "not going to", "refuse", "rather not", "prefer not", "not allowed", "not permitted", "not authorized",
    "not supposed", "prohibited", "decline", "comfortable", "don't", "do not", "as an ai", "something", "not a ",
    "outside", "beyond", "for me to", "violat", "against", "breaks", "allowed by", "only", "pass on", "not within",
)  # fmt: skip
EN_1 = RuleSet("en@1", _RULES, _OPENERS, _CLAUSE_SPLIT, _CAVEAT, _VETOES, _TRIGGER)

_HEDGE_WORDS = (
    r"might|may|possibly|perhaps|probably|likely|unclear|uncertain|arguably|could be|not necessarily|roughly"
    r"|approximately|in some cases"
)
_HEDGING_TABLE = (  # (id, pattern, hints: substrings every match contains)
    ("en.hedge.not_sure@1", r"\bi(?:'m| am) (?:not (?:entirely |completely |100% )?(?:sure|certain)|unsure)\b",
     ("sure", "certain")),
    ("en.hedge.dont_know@1", r"\bi (?:do not|don't) (?:really )?know\b|\bi have no (?:way of knowing|idea)\b",
     ("know", "idea")),
    ("en.hedge.cant_be_sure@1", r"\bi (?:can't|cannot) (?:be (?:sure|certain)|say (?:for sure|for certain|definitively)"
                                r"|guarantee)", ("can't", "cannot")),
    ("en.hedge.it_depends@1", r"(?:^|[.!?] )it (?:really |all )?depends\b", ("depends",)),
    ("en.hedge.not_a_professional@1", r"\bi(?:'m| am) not an? (?:doctor|lawyer|attorney|financial (?:adviser|advisor)"
                                      r"|medical professional|expert)\b", ("not a",)),
    ("en.hedge.may_be_wrong@1", r"\bi (?:may|might|could) be (?:wrong|mistaken)\b"
                                r"|\btake (?:this|that) with a grain of salt", ("wrong", "mistaken", "grain")),
)  # fmt: skip
HEDGING_EN_1 = (
    *(Rule(rule_id, re.compile(pattern), hints=hints) for rule_id, pattern, hints in _HEDGING_TABLE),
    # Piled-up caveats: four or more hedge words in the first ~300 characters.
    Rule(
        "en.hedge.caveats@1", re.compile(rf"\b(?:{_HEDGE_WORDS})\b"), min_count=4, hints=tuple(_HEDGE_WORDS.split("|"))
    ),
)
