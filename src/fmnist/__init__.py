"""fashion-mnist-cnn: train, inspect, serve and export CNNs for Fashion-MNIST."""

__version__ = "0.1.0"


class FmnistError(Exception):
    """A problem with the user's input, data or environment: shown as one line, exit status 2."""
