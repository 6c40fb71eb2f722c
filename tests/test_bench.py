import dataclasses
import json

import pytest
import torch

from fmnist.analysis import bench
from fmnist.models import create_model


def small(dataset):
    return dataclasses.replace(
        dataset,
        train_images=dataset.train_images[:3000],
        train_labels=dataset.train_labels[:3000],
        test_images=dataset.test_images[:1000],
        test_labels=dataset.test_labels[:1000],
    )


def test_reference_model_is_the_seed_cnn():
    ours = create_model("seed_cnn").eval()
    ref = bench.reference_model(ours).eval()
    x = torch.rand(300, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(ref(x), ours(x), rtol=1e-5, atol=1e-5)
    assert sum(p.numel() for p in ref.parameters()) == 107_554


@pytest.mark.slow
def test_bench_runs_end_to_end_and_reports(dataset):
    ds = small(dataset)
    result = bench.run(ds, "cpu", repeats=1, epochs=1, log=lambda *a: None)
    assert result["throughput"]["ours_images_per_s"] > 0
    assert result["throughput"]["images"] == 2401  # the stratified 80% of 3,000
    tta = result["time_to_accuracy"]
    assert set(tta) == {"reference", "seed", "fast"}
    assert len(tta["reference"]["curve"]) == 1 and len(tta["fast"]["curve"]) == 2
    assert result["inference"]["ours_batch_1000_images_per_s"] > 0
    table = bench.format_table(result)
    assert "| training images/s" in table and "fast" in table
    m = result["machine"]
    assert m["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert m["torch_threads"] == torch.get_num_threads() and m["torch"] == torch.__version__
    assert m["cpu_capability"] in table
    json.dumps(result)  # the record is plain JSON
