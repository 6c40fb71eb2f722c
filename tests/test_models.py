import math

import numpy as np
import pytest
import torch
from torch import nn

from fmnist.models import (
    ModelError,
    count_parameters,
    create_model,
    describe,
    list_models,
    summary,
)
from fmnist.models.seed import MaxPool2x2


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_builds_and_runs(name):
    model = create_model(name)
    assert model.model_name == name
    out = model(torch.rand(3, 1, 28, 28))
    assert out.shape == (3, 10) and torch.isfinite(out).all()
    assert f'Model: "{name}"' in summary(model)


def test_every_registered_model_says_what_it_is():
    for name in list_models():
        text = describe(name)
        assert text.strip() and "\n" not in text, name


def test_unknown_model_lists_known_ones():
    with pytest.raises(ModelError) as e:
        create_model("resnet9000")
    assert "seed_cnn" in str(e.value)


def test_unknown_argument_is_refused():
    with pytest.raises(ModelError, match="no argument width"):
        create_model("seed_cnn", width=3)


def test_quick_w_takes_relu_or_gelu_and_refuses_others():
    relu = create_model("quick_w2r24")
    assert any(isinstance(m, nn.ReLU) for m in relu.modules())
    assert not any(isinstance(m, nn.GELU) for m in relu.modules())
    with pytest.raises(ModelError, match="activation must be one of gelu, relu, got 'tanh'"):
        create_model("quick_w", activation="tanh")


def test_seed_cnn_parameter_count_matches_keras():
    trainable, stats = count_parameters(create_model("seed_cnn"))
    # Keras's model.summary() of the tutorial: 107,598 total, of which 44 non-trainable.
    assert (trainable, stats) == (107_554, 44)
    text = summary(create_model("seed_cnn"))
    assert "Total params: 107,598" in text and "Trainable params: 107,554" in text


def test_seed_cnn_layers_follow_the_tutorial():
    m = create_model("seed_cnn")
    kinds = [type(x).__name__ for x in m.modules() if not list(x.children())]
    assert kinds == [
        "Conv2d", "ReLU", "BatchNorm2d", "MaxPool2x2",
        "Conv2d", "ReLU", "BatchNorm2d", "MaxPool2x2",
        "Flatten", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear",
    ]  # fmt: skip
    convs = [x for x in m.modules() if isinstance(x, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 6, (5, 5), (2, 2)),
        (6, 16, (5, 5), (2, 2)),
    ]
    for bn in (x for x in m.modules() if isinstance(x, nn.BatchNorm2d)):
        assert bn.eps == 1e-3 and math.isclose(bn.momentum, 0.01)
    drops = [x.p for x in m.modules() if isinstance(x, nn.Dropout)]
    assert drops == [0.2, 0.2]


def test_keras_initialisation():
    torch.manual_seed(0)
    m = create_model("seed_cnn")
    for layer in m.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            w = layer.weight
            receptive = w[0, 0].numel() if w.dim() == 4 else 1
            fan_in, fan_out = w.shape[1] * receptive, w.shape[0] * receptive
            limit = math.sqrt(6 / (fan_in + fan_out))  # Glorot uniform
            assert w.abs().max() <= limit
            assert w.abs().max() > 0.9 * limit  # spread over the whole range, not a narrower init
            assert abs(w.std().item() - limit / math.sqrt(3)) < 0.2 * limit
            assert torch.count_nonzero(layer.bias) == 0


def test_stronger_models_have_the_documented_sizes():
    assert 250_000 < count_parameters(create_model("wide_cnn"))[0] < 400_000
    # He et al.'s ResNet-20 for CIFAR-10 has about 0.27M parameters
    assert 260_000 < count_parameters(create_model("resnet20"))[0] < 280_000
    with pytest.raises(ModelError, match="6n"):
        create_model("resnet20", depth=21)


def test_resnet_blocks_start_as_identity():
    torch.manual_seed(0)
    m = create_model("resnet20").eval()
    block = m.features[2]
    x = torch.rand(2, 16, 28, 28)
    assert torch.allclose(block(x), torch.relu(x))


def test_fast_pooling_equals_max_pool2d():
    pool = MaxPool2x2()
    x = torch.relu(torch.randn(8, 6, 28, 28))  # ReLU makes ties, as in the model
    with torch.no_grad():
        assert torch.equal(pool(x), nn.functional.max_pool2d(x, 2))
    xr = x.clone().requires_grad_()
    out = pool(xr)
    assert torch.equal(out, nn.functional.max_pool2d(x, 2))
    assert isinstance(pool, nn.MaxPool2d) and pool.kernel_size == 2 and pool.stride == 2


def test_blocked_inference_equals_one_batch():
    torch.manual_seed(0)
    m = create_model("seed_cnn").eval()
    x = torch.rand(600, 1, 28, 28)
    with torch.no_grad():
        blocked = m(x)
        m.cpu_block = 10_000
        whole = m(x)
    torch.testing.assert_close(blocked, whole, rtol=1e-5, atol=1e-5)
    m.train()  # BatchNorm on batch statistics: never split
    m.cpu_block = 256
    torch.manual_seed(1)
    with torch.no_grad():
        a = m(x)
    m.cpu_block = 10_000
    torch.manual_seed(1)
    with torch.no_grad():
        b = m(x)
    assert torch.equal(a, b)


def test_quick_w_whitens_and_keeps_its_first_filters_frozen(dataset):
    """The first convolution's filters are the training patches' principal axes scaled to
    unit variance (as scikit-learn's whitening PCA finds them): their outputs on other
    images have about the identity as covariance; a training step leaves them unchanged."""
    from sklearn.decomposition import PCA

    model = create_model("quick_w")
    model.init_from_data(torch.from_numpy(dataset.train_images[:1000]), limit=1000)
    w = model.whiten.weight.detach().view(18, 9)[:9].double()
    x = model.normalize(torch.from_numpy(dataset.train_images[:1000]).float().div(255)[:, None])
    patches = torch.nn.functional.unfold(x, 3).transpose(1, 2).reshape(-1, 9).double().numpy()
    pca = PCA(whiten=True).fit(patches)
    for row in pca.components_ / np.sqrt(pca.explained_variance_[:, None] + 5e-3):
        cos = (w @ torch.from_numpy(row)).abs() / (w.norm(dim=1) * np.linalg.norm(row))
        assert float(cos.max()) > 0.999  # each whitening axis is one of the filters
    held_out = model.normalize(
        torch.from_numpy(dataset.test_images[:500]).float().div(255)[:, None]
    )
    out = torch.nn.functional.conv2d(held_out, model.whiten.weight[:9])[:, :, 2:-2, 2:-2]
    cov = torch.cov(out.permute(1, 0, 2, 3).reshape(9, -1))
    off_diagonal = cov - torch.diag(cov.diagonal())
    assert off_diagonal.abs().max() < 0.1, cov  # decorrelated
    assert ((cov.diagonal() > 0.5) & (cov.diagonal() < 1.5)).all(), cov  # about unit variance
    before = model.whiten.weight.detach().clone()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    loss = model(torch.rand(8, 1, 28, 28)).logsumexp(1).mean()
    loss.backward()
    opt.step()
    assert torch.equal(model.whiten.weight, before) and model.whiten.bias.grad is not None


def test_whitening_bias_after_the_pooling_is_the_same_function_off_the_gradient_path():
    """quick_w adds its whitening bias after the first max-pooling: the same outputs as the
    bias in the convolution before it (pooling commutes with a constant per channel), and
    the frozen convolution's output needs no gradient while the bias still gets one."""
    torch.manual_seed(0)
    for name in ("quick_w2", "quick_wd64"):
        model = create_model(name)
        model.init_from_data(torch.randint(0, 256, (300, 28, 28), dtype=torch.uint8))
        with torch.no_grad():
            model.whiten.bias.normal_()
        model.train()
        x = torch.rand(16, 1, 28, 28)
        # the reference: the bias inside the convolution, then every layer in order
        padded, w, b = model.pad(model.normalize(x)), model.whiten.weight, model.whiten.bias
        ref = model.classifier(model.features(nn.functional.conv2d(padded, w, b)))
        torch.testing.assert_close(model(x), ref, rtol=1e-5, atol=1e-5)
        assert not model.whiten(model.pad(model.normalize(x))).requires_grad
        model.zero_grad()
        model(x).sum().backward()
        assert model.whiten.bias.grad.abs().sum() > 0 and model.whiten.weight.grad is None


def whitened_and_watched(**args):
    """A quick_w on 2x2 patches, whitened, and a list that gets, per forward pass, whether
    its first learned convolution's input carries a gradient."""
    model = create_model("quick_w", patch=2, **args)
    model.init_from_data(torch.randint(0, 256, (300, 28, 28), dtype=torch.uint8))
    first_conv = next(m for m in model.features if isinstance(m, nn.Conv2d))
    needs_grad = []
    first_conv.register_forward_pre_hook(lambda _m, a: needs_grad.append(a[0].requires_grad))
    return model, first_conv, needs_grad


def test_quick_w_frozen_bias_keeps_it_zero_and_stops_the_gradient_at_the_first_conv():
    """With frozen_bias the whitening's bias stays zero through a step and nothing below the
    first learned convolution needs a gradient (its input's gradient is what it saves);
    everything above still learns."""
    torch.manual_seed(0)
    model, first_conv, needs_grad = whitened_and_watched(frozen_bias=True)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model(torch.rand(8, 1, 28, 28)).logsumexp(1).mean().backward()
    opt.step()
    assert needs_grad == [False]
    assert model.whiten.bias.grad is None and not model.whiten.bias.any()
    assert first_conv.weight.grad.abs().sum() > 0 and model.classifier.weight.grad is not None
    learned, _, needs_grad = whitened_and_watched()
    learned(torch.rand(8, 1, 28, 28))
    assert needs_grad == [True]  # the default learns the bias, so its input carries a gradient


def test_whitening_and_its_pooling_as_one_strided_convolution_match_the_two_steps():
    """Whitening.pooled computes max_pool2d(conv2d(x, w), 2) as one stride-2 convolution of
    the filters shifted to the window's 4 offsets: the same outputs for every patch size."""
    torch.manual_seed(0)
    for patch in (2, 3, 4, 5):
        model = create_model("quick_w", patch=patch)
        model.init_from_data(torch.randint(0, 256, (200, 28, 28), dtype=torch.uint8))
        x = model.pad(model.normalize(torch.rand(6, 1, 28, 28)))
        ref = nn.functional.max_pool2d(nn.functional.conv2d(x, model.whiten.weight), 2)
        out = model.whiten.pooled(x)
        assert out.shape == ref.shape == (6, 2 * patch * patch, 14, 14)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_every_registered_model_fits_the_cost_bounds_with_room():
    from fmnist.models.limits import MAX_MFLOP, MAX_PARAMETERS, meta_cost

    costs = [meta_cost(lambda n=n: create_model(n), n) for n in list_models()]
    largest_params = max(p for p, _ in costs)
    largest_mflop = max(m for _, m in costs)
    assert 10 * largest_params <= MAX_PARAMETERS <= 50 * largest_params
    assert 10 * largest_mflop <= MAX_MFLOP <= 50 * largest_mflop


def test_a_huge_architecture_is_refused_before_any_allocation():
    import resource

    def peak_bytes():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    before = peak_bytes()
    with pytest.raises(ModelError, match="parameters; the limit is"):
        create_model("wide_cnn", width=4096)
    assert peak_bytes() - before < 200e6  # the real model's weights alone: about 19 GB


def test_meta_cost_counts_like_the_real_model():
    from fmnist.models import count_parameters, flops
    from fmnist.models.limits import meta_cost

    real = create_model("quick_wd")
    params, mflop = meta_cost(lambda: create_model("quick_wd"), "quick_wd")
    assert params == sum(count_parameters(real))
    assert mflop == pytest.approx(flops(real) / 1e6)


def test_changed_arguments_are_held_to_the_mflop_bound(monkeypatch):
    from fmnist.models import limits

    monkeypatch.setattr(limits, "MAX_MFLOP", 100)
    with pytest.raises(ModelError, match="MFLOP per image; the limit is 100 MFLOP"):
        create_model("wide_cnn", width=64)
    # a registry size at its own defaults is known to fit: counted without a forward pass
    assert create_model("wide_cnn64") is not None
