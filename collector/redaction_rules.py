"""The built-in redaction rules: what a secret or a piece of personal data looks like.

Each rule has a `pattern` applied to text (compiled ASCII-only, so `\\d`, `\\w`, `\\s` mean the
same as in bytes) and a `trigger`: a looser bytes pattern searched in the raw request first. A
trigger must match wherever its pattern could, even when the string sits between protobuf
length prefixes (which can be any byte, printable ones included), so triggers never use `\\b`,
lookbehinds or anchors. `group` names the part replaced (0: the whole match), `check` vetoes a
match (Luhn for cards), `context` must also occur in the same string.
Order matters: earlier rules run first, so a specific rule claims its match before a generic one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: str
    trigger: str
    group: int = 0
    check: Callable[[str], bool] | None = None
    context: str = ""
    flags: int = 0


# Visa, Mastercard (2- and 5-series), Amex, Diners, JCB, Discover, Maestro, UnionPay, RuPay: 2-6.
_CARD_ISSUER = re.compile(r"(?:2[2-7]|3[0-9]|4|5[0-9]|6[0-9])")


def luhn_card(text: str) -> bool:
    """A payment card number: a known issuer prefix, 13-19 digits and a valid Luhn check digit."""
    digits = re.sub(r"[ -]", "", text)
    if not 13 <= len(digits) <= 19 or not _CARD_ISSUER.match(digits):
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def phone_digits(text: str) -> bool:
    return 8 <= sum(c.isdigit() for c in text) <= 15


def iban(text: str) -> bool:
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _mixed(text: str) -> bool:
    return any(c.isupper() for c in text) and any(c.islower() for c in text) and any(c.isdigit() for c in text)


_AWS_CONTEXT = r"(?:AKIA|ASIA)[A-Z0-9]{16}|\[REDACTED:aws_access_key_id\]|(?i:aws.{0,30}secret|secret.{0,30}aws)"
_NOT_VALUE = {"true", "false", "null", "none", "required", "optional", "string"}

RULES: tuple[Rule, ...] = (
    Rule(
        "private_key",
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
        r"PRIVATE KEY",
        flags=re.DOTALL,
    ),
    Rule("anthropic_api_key", r"sk-ant-[A-Za-z0-9_-]{16,}", r"sk-ant-"),
    Rule("openai_api_key", r"(?<![A-Za-z0-9])sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,}", r"sk-"),
    Rule(
        "aws_secret_access_key",
        r"(?i:aws.?secret.?(?:access.?)?key|secret.?access.?key)[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
        r"(?i:secret.?(?:access.?)?key)",
        group=1,
    ),
    # A 40-character secret next to an access key id (or the word AWS): the pair as configs show it.
    Rule(
        "aws_secret_access_key",
        r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])",
        _AWS_CONTEXT,
        check=_mixed,
        context=_AWS_CONTEXT,
    ),
    Rule(
        "aws_access_key_id",
        r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}(?![A-Z0-9])",
        r"A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA|PKA)[A-Z0-9]{16}",
    ),
    Rule(
        "github_token",
        r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,})",
        r"gh[pousr]_|github_pat_",
    ),
    Rule(
        "slack_token",
        r"xox[abeposr]-[A-Za-z0-9-]{10,}|xapp-[0-9]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/[A-Za-z0-9/_-]+",
        r"xox[abeposr]-|xapp-|hooks\.slack\.com",
    ),
    Rule(
        "api_key",  # other vendors: Google, Stripe, Hugging Face, GitLab, npm, PyPI, SendGrid
        r"AIza[0-9A-Za-z_-]{35}|(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}|hf_[A-Za-z0-9]{30,}|glpat-[A-Za-z0-9_-]{20,}"
        r"|npm_[A-Za-z0-9]{36}|pypi-AgE[A-Za-z0-9_-]{50,}|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}",
        r"AIza|[sr]k_(?:live|test)_|hf_|glpat-|npm_|pypi-AgE|SG\.",
    ),
    Rule("bearer_token", r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]{12,}", r"(?i:bearer)\s"),
    Rule(
        "authorization_header",
        r"(?i:authorization)[\"']?\s*[:=]\s*[\"']?(?i:basic|token|digest|apikey)\s+([^\s\"',;]+)",
        r"(?i:authorization)",
        group=1,
    ),
    Rule("jwt", r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*", r"eyJ[A-Za-z0-9_-]{5,}\."),
    Rule("url_credentials", r"[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@\"']+:([^\s@/\"']+)@", r"://[^\s:/@]+:[^\s@/]+@", 1),
    Rule(
        "credential_assignment",
        r"(?i:\b(?:password|passwd|pwd|passphrase|secret|client[_-]?secret|secret[_-]?key|api[_-]?key|apikey"
        r"|x-api-key|access[_-]?key|account[_-]?key|token|access[_-]?token|auth[_-]?token|refresh[_-]?token"
        r"|session[_-]?token|private[_-]?key))[\"']?\s*[:=]\s*[\"']?([^\s\"',;{}\[\]]{6,})",
        r"(?i:passw(?:or)?d|pwd|passphrase|secret|key|token)[\"']?\s*[:=]",
        group=1,
        check=lambda value: value.lower() not in _NOT_VALUE,
    ),
    Rule(
        "email",
        r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}",
        r"@[A-Za-z0-9-]+\.[A-Za-z0-9.-]*[A-Za-z]{2}",
    ),
    Rule(
        "payment_card",
        r"(?<![0-9+])(?:[0-9]{4}([ -]?)[0-9]{4}\1[0-9]{4}\1[0-9]{1,7}|[0-9]{4}([ -]?)[0-9]{6}\2[0-9]{4,5})(?![0-9])",
        r"[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]|[0-9]{4}[ -]?[0-9]{6}[ -]?[0-9]{4}",
        check=luhn_card,
    ),
    Rule(
        "us_ssn",
        r"(?<![\w-])(?!000|666|9[0-9]{2})[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}(?![\w-])",
        r"[0-9]{3}-[0-9]{2}-[0-9]{4}",
    ),
    Rule(
        "iban",
        r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])",
        r"[A-Z]{2}[0-9]{2} ?[A-Z0-9]{4} ?[A-Z0-9]{4}",
        check=iban,
    ),
    Rule(
        "phone_number",
        # +CC and groups (E.164 too); US style with separators; national with a trunk 0. Plain digit
        # runs are left alone: they are ids, timestamps and token counts far more often than phones.
        r"(?<![\w+])\+[1-9][0-9]{0,2}(?:[ .-]?\(?[0-9]{1,4}\)?){2,5}(?![\w])"
        r"|(?<![\w.-])\(?[2-9][0-9]{2}\)?[ .-]?[2-9][0-9]{2}[ .-][0-9]{4}(?![\w.-])"
        r"|(?<![\w.+-])1[ .-][2-9][0-9]{2}[ .-][2-9][0-9]{2}[ .-][0-9]{4}(?![\w.-])"
        r"|(?<![\w.-])0[0-9]{2,4}[ -][0-9]{3,4}[ -][0-9]{3,4}(?![\w.-])",
        r"\+[0-9]|[0-9]{3}\)?[ .-][0-9]{3}|[0-9]{3}[ .-][0-9]{4}",
        check=phone_digits,
    ),
)

# Attribute keys whose string values are secrets whatever they look like (`db.password`, `http.request.header.cookie`).
SENSITIVE_KEY = (
    r"(?i)(?:^|[._-])(?:password|passwd|passphrase|secret|client[_-]?secret|api[_-]?key|apikey"
    r"|x-api-key|access[_-]?token|refresh[_-]?token|auth[_-]?token|id[_-]?token|session[_-]?token|token"
    r"|authorization|cookie|set-cookie|private[_-]?key|credentials?)$"
)
SENSITIVE_KEY_TRIGGER = r"(?i:passw|passphrase|secret|api.?key|token[^s_]|authorization|cookie|private.?key|credential)"
SENSITIVE_KEY_RULE = "sensitive_attribute"
