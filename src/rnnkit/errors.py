"""Exception types. Every user-facing error is a ``ValueError`` (or ``TypeError``) subclass,
so ``except ValueError`` catches all of rnnkit's input errors."""


class DataError(ValueError):
    """Bad user data: a file, column, row or array that cannot be used as given."""


class ModelFileError(ValueError):
    """A model or checkpoint file that is not a valid rnnkit file."""


class MemoryLimitError(ValueError, MemoryError):
    """A request whose memory need, computed before allocating, exceeds what is available
    (a ``ValueError``, so that it reads as bad input, and a ``MemoryError``)."""


class GradcheckError(RuntimeError):
    """``rk.gradcheck`` found an analytic gradient that disagrees with central differences."""
