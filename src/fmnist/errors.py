"""The error every stage raises for a problem with the user's input, data or environment."""


class FmnistError(Exception):
    """A problem with the user's input, data or environment: shown as one line, exit status 2."""


class ModelError(FmnistError):
    """An architecture that cannot be built: unknown name, bad arguments, too large."""


class ArgumentError(FmnistError, ValueError):
    """A Python API argument of the right type whose value cannot be used."""


class ArgumentTypeError(FmnistError, TypeError):
    """A Python API argument of the wrong type."""


def what(value) -> str:
    """A value's type and a short repr, for messages about arguments."""
    import reprlib

    return "None" if value is None else f"{type(value).__name__} {reprlib.repr(value)}"
