"""The exceptions the package raises.

Every message names the file, row, column or parameter at fault and says what was
expected, so that the CLI can print it on one line and a notebook user can act on it.
"""


class AnalysisError(Exception):
    """Base class: an error the user can fix, reported without a traceback by the CLI."""


class DataError(AnalysisError):
    """A data file is missing, unreadable or holds values that break the rules."""


class SchemaError(DataError):
    """A table's columns are not the ones its schema declares."""


class ChecksumError(DataError):
    """A file's sha256 differs from the one recorded in its sidecar."""


class SidecarError(DataError):
    """A `.meta.yaml` sidecar is missing, unreadable or lacks a required key."""


class ParameterError(AnalysisError, ValueError):
    """A parameter (CLI option, notebook parameter, function argument) is not valid."""


class InsufficientDataError(AnalysisError):
    """The data needed for a computation does not exist (missing stays missing)."""


class Interrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an error
    """The process received SIGTERM (or SIGINT): unwind, clean up, exit with 128 + signum.

    A BaseException, like KeyboardInterrupt, so that ``except Exception`` does not swallow it
    and every ``finally`` and context manager on the way out still runs.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
