"""fashion-mnist-cnn: train, inspect, serve and export CNNs for Fashion-MNIST."""

import json
from pathlib import Path

__version__ = "0.1.0"


class FmnistError(Exception):
    """A problem with the user's input, data or environment: shown as one line, exit status 2."""


def read_json(path, what: str, missing: str = "no such file", error: type = FmnistError):
    """A JSON file's content; a missing or unreadable file raises `error` as one line."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise error(f"{path}: not a readable {what} ({e})") from None
