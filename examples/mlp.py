"""A multilayer perceptron for Fashion-MNIST: fmnist train --model examples/mlp.py:MLP"""

from torch import nn


class MLP(nn.Module):
    """Pixels (N, 1, 28, 28) in [0, 1] -> logits (N, 10) through `depth` hidden layers."""

    def __init__(self, width: int = 256, depth: int = 2, dropout: float = 0.2):
        super().__init__()
        layers, inputs = [nn.Flatten()], 28 * 28
        for _ in range(depth):
            layers += [nn.Linear(inputs, width), nn.ReLU(), nn.Dropout(dropout)]
            inputs = width
        layers.append(nn.Linear(inputs, 10))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        # centre the pixels: the dataset's mean is about 0.29, its spread about 0.35
        return self.net((x - 0.29) / 0.35)
