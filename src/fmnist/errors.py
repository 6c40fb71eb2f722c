"""The error every stage raises for a problem with the user's input, data or environment."""


class FmnistError(Exception):
    """A problem with the user's input, data or environment: shown as one line, exit status 2."""
