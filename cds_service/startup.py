"""The one start-up error type: whatever stops the service from starting says what, in one line.

Every check that runs once at start-up (settings, knowledge files, card wording, service files,
client-authentication settings, suppression policy) raises a subclass of `StartupError` whose message
names the `CDS_*` variable, or the file and the field. The command line (`b12-cds`, `python -m
cds_service`, `scripts/run.sh`) catches exactly this type and prints that message as one line on
stderr, with no traceback: the operator has a typo to fix, not a bug to report. Anything else that
escapes start-up is a bug and keeps its traceback.
"""

from __future__ import annotations


class StartupError(ValueError):
    """A setting or a data file is invalid: the service must not start. The message names it.

    A ValueError so that callers written against the older per-module classes keep working.
    """

    def one_line(self) -> str:
        """The message on one line (a JSON parser's message may carry a newline)."""
        return " ".join(str(self).split())
