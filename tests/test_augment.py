import numpy as np
import pytest
import torch

from fmnist import augment


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_crop_is_a_shift_with_zero_fill():
    x = torch.randint(1, 256, (64, 28, 28), dtype=torch.uint8, generator=gen(1))
    out = augment.random_crop(x, 2, gen(2))
    padded = np.pad(x.numpy(), ((0, 0), (2, 2), (2, 2)))
    for i in range(64):  # each output is one of the 25 windows of the padded image
        windows = [padded[i, dy : dy + 28, dx : dx + 28] for dy in range(5) for dx in range(5)]
        assert any(np.array_equal(out[i].numpy(), w) for w in windows)
    shifted = [not torch.equal(out[i], x[i]) for i in range(64)]
    assert sum(shifted) > 48  # 24 of 25 windows move the image


def test_flip_mirrors_about_half():
    x = torch.randint(0, 256, (1000, 28, 28), dtype=torch.uint8, generator=gen(1))
    out = augment.random_flip(x, gen(3))
    flipped = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x, strict=True)])
    same = torch.tensor([torch.equal(o, i) for o, i in zip(out, x, strict=True)])
    assert (flipped | same).all()
    assert 400 < int(flipped.sum()) < 600


def test_erase_touches_one_rectangle_in_about_half():
    x = torch.zeros(1000, 28, 28, dtype=torch.uint8)
    out = augment.random_erase(x, gen(4), p=0.5)
    changed = (out != 0).flatten(1).any(1)
    assert 400 < int(changed.sum()) < 600
    for img in out[changed][:50]:
        ys, xs = torch.nonzero(img, as_tuple=True)
        box = img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        area = box.numel()
        assert area <= 0.25 * 784 * 1.15  # the largest area asked for, after rounding
        assert (box != 0).float().mean() > 0.9  # a filled rectangle (noise may hit 0 rarely)


def test_augment_is_seeded_and_keeps_dtype():
    x = torch.randint(0, 256, (32, 28, 28), dtype=torch.uint8, generator=gen(1))
    a = augment.augment(x, "crop_flip_erase", gen(5))
    b = augment.augment(x, "crop_flip_erase", gen(5))
    assert a.dtype == torch.uint8 and a.shape == x.shape and torch.equal(a, b)
    assert torch.equal(augment.augment(x, "none", gen(5)), x)


def test_flip_erase_mirrors_and_erases_without_shifting():
    """`flip_erase`: `flip`'s mirror (the same draws), then at most one noise rectangle per
    image on about half of them; every other pixel stays where the mirror put it."""
    x = torch.randint(1, 256, (400, 28, 28), dtype=torch.uint8, generator=gen(2))
    mirrored = augment.augment(x, "flip", gen(7))
    out = augment.augment(x, "flip_erase", gen(7))
    assert out.dtype == torch.uint8 and out.shape == x.shape
    changed = out != mirrored
    hit = changed.flatten(1).any(1)
    assert 0.4 < hit.float().mean() < 0.6
    for img in changed[hit]:
        rows, cols = img.any(1).nonzero(), img.any(0).nonzero()
        box = img[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.float().mean() > 0.9  # one filled rectangle (noise may equal a pixel)


@pytest.mark.slow
def test_corrupt_changes_about_half_with_the_training_corruptions(dataset):
    """`flip_corrupt`: the mirror, then one of corruptions.TRAINING on about half of the
    images, reproducible from the generator; each changed image is one of those
    corruptions of its input at some severity (checked for the deterministic ones)."""
    from fmnist import corruptions

    x = torch.from_numpy(dataset.test_images[:400])
    out = corruptions.random_corruptions(x, gen(6))
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert torch.equal(out, corruptions.random_corruptions(x, gen(6)))
    changed = (out != x).flatten(1).any(1)
    assert 150 < int(changed.sum()) < 250
    assert torch.equal(out[~changed], x[~changed])
    # blur, brightness and contrast draw nothing per image: a changed image that equals
    # one of them at some severity was made by it; most changed images are some corruption
    fixed = ("blur", "brightness", "contrast")
    matched = 0
    for i in changed.nonzero().squeeze(1)[:60].tolist():
        src = x[i : i + 1].float().div(255).unsqueeze(1)
        for name in fixed:
            for s in range(1, 6):
                ref = corruptions.CORRUPTIONS[name](src, s, gen()).clamp(0, 1)
                if torch.equal(ref.squeeze(1).mul(255).round().to(torch.uint8), out[i : i + 1]):
                    matched += 1
    assert 10 <= matched <= 40  # about half of 60 (3 of the 6 corruptions)
    flipped = augment.augment(x, "flip_corrupt", gen(7))
    assert flipped.dtype == torch.uint8 and not torch.equal(flipped, x)
