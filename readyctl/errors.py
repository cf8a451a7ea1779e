"""The small error hierarchy; user errors are printed as one line, never a traceback."""

from __future__ import annotations

import re

# everything str.splitlines() splits on, and other control characters
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


class ReadyctlError(Exception):
    """Base of every error readyctl reports to a user."""

    exit_code = 2


class ConfigError(ReadyctlError):
    """The configuration file or a flag is wrong; nothing ran.

    The message is always one line (`FILE:LINE: key.path: what is wrong and how to fix it`):
    line breaks that a value brought in become spaces.
    """

    def __init__(self, message: object = "") -> None:
        super().__init__(_LINE_BREAKS.sub(" ", str(message)))


class UsageError(ReadyctlError):
    """A command was called with arguments that cannot work."""


class TargetUnreachable(ReadyctlError):
    """The target could not be reached at all."""


class CheckDefinitionError(ReadyctlError):
    """A check's metadata is invalid or its id is registered twice."""


class DeadlineExceeded(Exception):
    """Raised inside a check when its cooperative deadline has passed."""
