"""Injected faults, per API: random rates per kind and targeted rules.

A fault kind is an HTTP status (429, 500, 503, ...), "timeout" (answer only after
`timeout_seconds`, longer than a client waits) or "drop" (close the connection without an
answer). Random rates apply to the REST / accounting calls, before they act. A rule matches a
method and a substring of the path with its query, fires `times` times (forever when omitted)
and, with `"after": true`, strikes once the request has acted: the change is made but its answer
is lost, the case that makes clients re-read before they retry.
"""

import random
import threading
from dataclasses import dataclass, field

KINDS = ("timeout", "drop")
DEFAULT_TIMEOUT_SECONDS = 30.0


@dataclass
class Rule:
    status: int | str
    path_contains: str = ""
    method: str | None = None
    times: int | None = None
    after: bool = False

    def matches(self, method: str, target: str, after: bool) -> bool:
        if self.after != after or self.times == 0:
            return False
        if self.method and self.method.upper() != method:
            return False
        return self.path_contains in target


@dataclass
class ApiFaults:
    rates: dict[str, float] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    rng: random.Random = field(default_factory=random.Random)


def parse_kind(value) -> int | str:
    if str(value) in KINDS:
        return str(value)
    status = int(value)
    if not 400 <= status <= 599:
        raise ValueError(f"a fault status is 400-599, 'timeout' or 'drop', not {value!r}")
    return status


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self._apis: dict[str, ApiFaults] = {}

    def configure(self, api: str, config: dict) -> None:
        """Replace the API's faults: config is {"rates", "rules", "seed", "timeout_seconds"}."""
        rates = {
            str(parse_kind(kind)): float(rate) for kind, rate in config.get("rates", {}).items()
        }
        rules = [
            Rule(
                status=parse_kind(rule["status"]),
                path_contains=rule.get("path_contains", ""),
                method=rule.get("method"),
                times=rule.get("times"),
                after=bool(rule.get("after", False)),
            )
            for rule in config.get("rules", [])
        ]
        faults = ApiFaults(
            rates=rates,
            rules=rules,
            timeout_seconds=float(config.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)),
            rng=random.Random(config.get("seed")),  # noqa: S311 (fault sampling, not secrets)
        )
        with self._lock:
            self._apis[api] = faults

    def clear(self, api: str | None = None) -> None:
        with self._lock:
            if api is None:
                self._apis.clear()
            else:
                self._apis.pop(api, None)

    def pick(self, api: str, method: str, target: str, *, random_ok: bool, after: bool = False):
        """The fault kind to apply to this request now, or None."""
        with self._lock:
            faults = self._apis.get(api)
            if faults is None:
                return None
            for rule in faults.rules:
                if rule.matches(method, target, after):
                    if rule.times is not None:
                        rule.times -= 1
                    return rule.status
            if after or not random_ok:
                return None
            draw = faults.rng.random()
            for kind, rate in faults.rates.items():
                if draw < rate:
                    return parse_kind(kind)
                draw -= rate
        return None

    def timeout_seconds(self, api: str) -> float:
        with self._lock:
            faults = self._apis.get(api)
            return faults.timeout_seconds if faults else DEFAULT_TIMEOUT_SECONDS

    def snapshot(self) -> dict:
        with self._lock:
            return {
                api: {
                    "rates": dict(f.rates),
                    "rules": [vars(rule).copy() for rule in f.rules],
                    "timeout_seconds": f.timeout_seconds,
                }
                for api, f in self._apis.items()
            }
