"""The error every stage raises for a problem with the user's input, data or environment."""


class FmnistError(Exception):
    """A problem with the user's input, data or environment: shown as one line, exit status 2."""


class ModelError(FmnistError):
    """An architecture that cannot be built: unknown name, bad arguments, too large."""
