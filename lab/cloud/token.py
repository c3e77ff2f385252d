"""The API token: from the provider's environment variable or from a file (`--token-file`).

It is never printed, logged, written to the lab's state or put on a command line: `Token` shows
itself masked, and `redact` takes it out of any text that came back from elsewhere."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import Exit, LabError

MASK = "***"


@dataclass(frozen=True)
class Token:
    source: str  # where it came from, for messages: "HCLOUD_TOKEN" or "the token in /path"
    _value: str = field(repr=False)

    def reveal(self) -> str:
        """The secret itself: only for handing to the SDK."""
        return self._value

    def redact(self, text: str) -> str:
        return text.replace(self._value, MASK) if self._value else text

    def __repr__(self) -> str:
        return f"Token(source={self.source!r}, value={MASK})"

    __str__ = __repr__


def load(variable: str, env: Mapping[str, str] | None = None, token_file: Path | None = None) -> Token:
    """From --token-file when given, else from the environment variable; a usage error when neither has one."""
    if token_file is not None:
        path = token_file.expanduser()
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise LabError(f"--token-file {path}: {exc.strerror or exc}", Exit.USAGE) from None
        if not value or len(value.split()) != 1:
            raise LabError(f"--token-file {path}: expected the token alone on one line", Exit.USAGE)
        return Token(f"the token in {path}", value)
    env = os.environ if env is None else env
    value = env.get(variable, "").strip()
    if not value:
        raise LabError(
            f"no API token: set {variable} or give --token-file",
            Exit.USAGE,
            hint=f"read -rs {variable} && export {variable}   (typed, so it stays out of the shell history)",
        )
    return Token(variable, value)
