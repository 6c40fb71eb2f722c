import pickle

import pytest
import torch

from fmnist.checkpoint import CheckpointError, load_model, read_description, save_model
from fmnist.models import create_model


def test_roundtrip_gives_identical_outputs(tmp_path):
    torch.manual_seed(1)
    model = create_model("seed_cnn").eval()
    model(torch.rand(64, 1, 28, 28))  # nothing changes BN statistics in eval mode
    path = save_model(model, tmp_path / "m.safetensors", metrics={"test_accuracy": 0.5})
    again = load_model(path)
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    info = read_description(tmp_path / "m.json")
    assert info["model"] == "seed_cnn" and info["metrics"]["test_accuracy"] == 0.5


def test_run_directory_is_a_model(tiny_run):
    model = load_model(tiny_run.run_dir)
    assert not model.training


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda d: d / "nothing.safetensors", "no such file"),
        (lambda d: (d / "weights.pt").write_bytes(b"x") and d / "weights.pt", "not a model"),
    ],
)
def test_bad_paths(tmp_path, setup, message):
    with pytest.raises(CheckpointError, match=message):
        load_model(setup(tmp_path))


def test_a_pickle_is_never_loaded(tmp_path):
    model = create_model("seed_cnn")
    path = save_model(model, tmp_path / "m.safetensors")

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled!')",))

    path.write_bytes(pickle.dumps({"w": Boom()}))
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load_model(path)


def test_weights_of_another_shape(tmp_path):
    path = save_model(create_model("seed_cnn", num_classes=5), tmp_path / "m.safetensors")
    desc = path.with_suffix(".json")
    desc.write_text(desc.read_text().replace('"num_classes": 5', '"num_classes": 10'))
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(path)


def test_unknown_architecture_in_description(tmp_path):
    path = save_model(create_model("seed_cnn"), tmp_path / "m.safetensors")
    desc = path.with_suffix(".json")
    desc.write_text(desc.read_text().replace('"seed_cnn"', '"mystery"'))
    with pytest.raises(CheckpointError, match="unknown model 'mystery'"):
        load_model(path)


def test_garbled_description(tmp_path):
    path = save_model(create_model("seed_cnn"), tmp_path / "m.safetensors")
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not a readable model description"):
        load_model(path)
