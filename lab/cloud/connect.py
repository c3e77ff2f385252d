"""Connect to one of the two providers: DigitalOcean (pydo) or Hetzner Cloud (hcloud), at its endpoint
(providers.endpoint). Above both implementations, so neither they nor providers.py import each other."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from lab.cloud import plan
from lab.cloud import token as tokenlib
from lab.cloud.providers import Api, endpoint
from lab.cloud.ratelimit import Limits
from lab.cloud.token import Token


def connect(
    provider_name: str,
    token: Token,
    env: Mapping[str, str] | None = None,
    say: Callable[[str], None] | None = None,
    limits: Limits | None = None,
    poll: float = 2.0,
) -> Api:
    info = plan.provider(provider_name)
    url = endpoint(info, env)
    limits = limits or Limits(f"the {info.title} API")
    limits.say = limits.say or say
    # Each SDK is imported only when its provider is used (each adds a few tenths of a second to a command).
    if info.name == "digitalocean":
        from lab.cloud.digitalocean import DigitalOcean

        return DigitalOcean(token, url, limits, poll)
    from lab.cloud.hetzner import Hetzner

    limits.refill_window = limits.refill_window or 3600.0
    return Hetzner(token, url, limits, poll)


POLL = 2.0  # seconds between two looks at a server that is starting or going


def with_token(provider_name: str, env: Mapping[str, str], token_file: Path | None, say: Callable[[str], None]) -> Api:
    """The provider's API with the token from its variable in `env`, or from `token_file`."""
    token = tokenlib.load(plan.provider(provider_name).token_variable, env, token_file)
    return connect(provider_name, token, env, say, poll=POLL)
