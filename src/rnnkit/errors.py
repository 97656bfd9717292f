"""Exception types. Every user-facing error is a ``ValueError`` (or ``TypeError``) subclass,
so ``except ValueError`` catches all of rnnkit's input errors."""


class DataError(ValueError):
    """Bad user data: a file, column, row or array that cannot be used as given."""


class ModelFileError(ValueError):
    """A model or checkpoint file that is not a valid rnnkit file."""
