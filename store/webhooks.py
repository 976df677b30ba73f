"""Alert delivery: POST the firing results of each rule as JSON to its webhook.

In: `AlertResult`s from `store.alerts.evaluate_alerts` and the config (a rule's `webhook`, else
`[alerting] webhook_url`). Out: one `Delivery` per POST saying whether it arrived. A webhook that is
down, slow or answers an error is retried a few times (`webhook_retries`, each attempt bounded by
`webhook_timeout_s`) and then reported, never raised: a broken webhook must not hide the alerts.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime

from store.alerts import AlertResult
from store.config import Config

logger = logging.getLogger(__name__)
PAYLOAD_VERSION = 1


@dataclass(frozen=True)
class Delivery:
    rule: str
    url: str
    delivered: bool
    attempts: int
    error: str | None = None


def deliver_alerts(results: list[AlertResult], config: Config, now: datetime | None = None) -> list[Delivery]:
    """One POST per rule with firing groups and a webhook; rules that do not fire send nothing."""
    rules = {rule.name: rule for rule in config.alerts}
    firing: dict[str, list[AlertResult]] = {}
    for result in results:
        if result.firing:
            firing.setdefault(result.rule, []).append(result)
    deliveries = []
    for name, fired in firing.items():
        rule = rules[name]
        url = rule.webhook or config.alerting.webhook_url
        if not url:
            continue
        payload = {
            "version": PAYLOAD_VERSION,
            "source": "vigil",
            "evaluated_at": (now or datetime.now(UTC)).isoformat(),
            "rule": name,
            "metric": rule.metric,
            "comparison": rule.comparison,
            "threshold": rule.threshold,
            "window": rule.window,
            "group_by": rule.group_by,
            "firing": [result.to_dict() for result in fired],
        }
        deliveries.append(
            post_json(name, url, payload, config.alerting.webhook_timeout_s, config.alerting.webhook_retries)
        )
    return deliveries


def post_json(rule: str, url: str, payload: dict, timeout_s: float, retries: int) -> Delivery:
    body = json.dumps(payload).encode()
    error = None
    for attempt in range(1, retries + 2):
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "vigil-alerts"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as answer:
                answer.read()
            return Delivery(rule, url, True, attempt)
        except urllib.error.HTTPError as exc:
            error = f"HTTP {exc.code} {exc.reason}"
            if exc.code < 500 and exc.code != 429:  # the receiver rejects this payload: sending it again won't help
                return Delivery(rule, url, False, attempt, error)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            error = str(getattr(exc, "reason", exc))
        logger.warning("webhook failed rule=%s url=%s attempt=%d error=%s", rule, url, attempt, error)
        if attempt <= retries:
            time.sleep(min(0.5 * 2 ** (attempt - 1), 4.0))
    return Delivery(rule, url, False, retries + 1, error)
