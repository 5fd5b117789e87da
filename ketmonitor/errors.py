"""One exception tree for the whole application, rooted at KetmonitorError."""


class KetmonitorError(Exception):
    """Base of every error ketmonitor raises on purpose; its message is meant for a person."""


class ConfigError(KetmonitorError):
    """A bad option, path, file or setting."""


class StoreError(KetmonitorError):
    """The session database cannot be opened, migrated or written."""


class SourceError(KetmonitorError):
    """A vitals source cannot be found, opened or read."""


class UnknownSourceError(SourceError):
    """No source is registered under that name."""


class NotSupportedError(SourceError):
    """The source cannot do what was asked (e.g. start an NIBP measurement on an oximeter)."""


class WorkflowError(KetmonitorError):
    """A clinical step was attempted out of order or without what it needs."""


class DoseDeviationError(WorkflowError):
    """A dose outside the protocol (too soon, too many, too much): giving it needs a reason.
    ``deviations`` lists each departure in words."""

    def __init__(self, message: str, deviations: list[str]):
        super().__init__(message)
        self.deviations = list(deviations)


class AuthError(KetmonitorError):
    """Login, lockout, password or permission failure."""


class VerificationError(KetmonitorError):
    """A record, signature, waveform digest or audit row failed verification; the message names it."""


class ExportError(KetmonitorError):
    """An export could not be produced (bad dates, unknown session, unwritable folder)."""
