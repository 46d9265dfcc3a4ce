"""The project's own errors; only these map to exit codes (SPEC §4)."""

from __future__ import annotations


class PipelineError(Exception):
    """A run that failed: nothing was committed (exit code 1)."""

    exit_code = 1


class BadInvocation(PipelineError):
    """The command or its input is wrong; nothing was touched (exit code 2)."""

    exit_code = 2


class SourceMissing(BadInvocation):
    """The source database file does not exist."""


class NotKaimonDatabase(BadInvocation):
    """The file is not SQLite, or lacks a table or column the producer writes."""


class SourceUnreadable(BadInvocation):
    """The file exists but cannot be opened or stays locked past the busy timeout."""


class TargetError(PipelineError):
    """The target could not be written (read-only path, full disk, locked)."""
