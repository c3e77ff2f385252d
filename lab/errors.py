"""Errors the driver reports as one clear line and a meaningful exit code."""

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    FAILED = 1  # something ran and failed (a check, a build, a command)
    USAGE = 2  # bad input: unknown framework, broken config file, bad option
    ENGINE = 3  # no Docker engine or no compose v2 answers
    PORT = 4  # the address nginx should publish on is taken
    UNHEALTHY = 5  # started, but not healthy in time


class LabError(Exception):
    """An error with a message meant for people, a hint, and the exit code to leave with."""

    def __init__(self, message: str, code: Exit = Exit.FAILED, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint
