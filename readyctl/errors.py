"""The small error hierarchy; user errors are printed as one line, never a traceback."""

from __future__ import annotations


class ReadyctlError(Exception):
    """Base of every error readyctl reports to a user."""

    exit_code = 2


class ConfigError(ReadyctlError):
    """The configuration file or a flag is wrong; nothing ran."""


class UsageError(ReadyctlError):
    """A command was called with arguments that cannot work."""


class TargetUnreachable(ReadyctlError):
    """The target could not be reached at all."""


class CheckDefinitionError(ReadyctlError):
    """A check's metadata is invalid or its id is registered twice."""


class DeadlineExceeded(Exception):
    """Raised inside a check when its cooperative deadline has passed."""
