"""429 Too Many Requests: wait as long as the API says, then send the request again, within bounds.

The delay comes from the answer's headers (`delay`, a pure function): `Retry-After` when there is one
(DigitalOcean sends it on 429), else the `RateLimit-Reset` time. Hetzner refills its budget one request at
a time (3600 an hour: one a second), so there the wait is one refill, not until the budget is full. Each
wait is capped at `max_wait`, and a request that is still refused after `tries` waits fails with a
clear message. Both SDKs get the same loop: as a pipeline policy (pydo, azure-core) or as a transport
adapter (hcloud, requests)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from lab.errors import Exit, LabError

TOO_MANY = 429


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def delay(headers: Mapping[str, str], now: float, max_wait: float, refill_window: float | None = None) -> float:
    """Seconds to wait before sending again, from a 429's headers (case-insensitive names), at most max_wait.

    refill_window: the API's budget window in seconds when it refills gradually (Hetzner: an hour), so
    that one request's worth comes back after window / RateLimit-Limit seconds."""
    lower = {k.lower(): v for k, v in headers.items()}
    wait: float | None = None
    retry_after = lower.get("retry-after")
    if retry_after:
        wait = _number(retry_after)
        if wait is None:  # an HTTP date
            try:
                wait = email.utils.parsedate_to_datetime(retry_after).timestamp() - now
            except (TypeError, ValueError):
                wait = None
    if wait is None and (reset := _number(lower.get("ratelimit-reset"))) is not None:
        wait = reset - now
        limit = _number(lower.get("ratelimit-limit"))
        if refill_window and limit:
            wait = min(wait, refill_window / limit)
    if wait is None:
        wait = 1.0
    return min(max(wait, 0.0), max_wait)


@dataclass
class Limits:
    """How long the lab waits out rate limits; tests pass their own sleep and clock and read `waits`."""

    api: str  # "the DigitalOcean API", for messages
    tries: int = 5  # waits for one request before giving up
    max_wait: float = 60.0  # the longest single wait
    refill_window: float | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    say: Callable[[str], None] | None = None
    waits: list[float] = field(default_factory=list)

    def wait(self, attempt: int, headers: Mapping[str, str]) -> None:
        """After the attempt-th 429 for one request: wait, or give up."""
        if attempt > self.tries:
            waited = sum(self.waits[-self.tries :]) if self.tries else 0.0
            raise LabError(
                f"{self.api} kept answering 429 Too Many Requests (rate limit) after {self.tries} waits "
                f"({waited:.0f}s)",
                Exit.FAILED,
                hint="the budget refills over time: run it again in a few minutes",
            )
        seconds = delay(headers, self.clock(), self.max_wait, self.refill_window)
        self.waits.append(seconds)
        if self.say:
            self.say(f"{self.api} says: too many requests; waiting {seconds:.1f}s as it asks")
        self.sleep(seconds)


def azure_policy(limits: Limits):  # -> azure.core.pipeline.policies.HTTPPolicy
    """For pydo's pipeline (in place of azure-core's RetryPolicy)."""
    from azure.core.pipeline.policies import HTTPPolicy

    class RateLimitPolicy(HTTPPolicy):
        def send(self, request):
            attempt = 0
            while True:
                response = self.next.send(request)
                if response.http_response.status_code != TOO_MANY:
                    return response
                attempt += 1
                limits.wait(attempt, response.http_response.headers)

    return RateLimitPolicy()


def requests_adapter(limits: Limits):  # -> requests.adapters.HTTPAdapter
    """For hcloud's requests session: hcloud itself never sees a 429, so it does not retry one on its own
    schedule."""
    from requests.adapters import HTTPAdapter

    class RateLimitAdapter(HTTPAdapter):
        def send(self, request, *args, **kwargs):
            attempt = 0
            while True:
                response = super().send(request, *args, **kwargs)
                if response.status_code != TOO_MANY:
                    return response
                attempt += 1
                response.close()
                limits.wait(attempt, response.headers)

    return RateLimitAdapter()
