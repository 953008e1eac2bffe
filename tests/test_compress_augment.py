"""compress: training-time augmentation (random shifts with zero fill, horizontal flips)."""

import numpy as np
import pytest
import torch

from compress.models import LeNet5
from compress.train import AUGMENTATIONS, augment_batch, train


def _images(n=64, c=2, h=12, w=10, seed=0):
    """Random images with a zero border of 2 pixels (so a shift by up to 2 loses nothing)."""
    g = np.random.default_rng(seed)
    x = np.zeros((n, c, h, w), dtype=np.float32)
    x[:, :, 2:-2, 2:-2] = g.random((n, c, h - 4, w - 4)) + 0.1
    return torch.as_tensor(x)


def _shifted(img, dy, dx):
    """``img`` moved by ``(dy, dx)``, zeros shifted in (an independent NumPy implementation)."""
    out = np.zeros_like(img)
    h, w = img.shape[-2:]
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = img[
        ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def _transform_of(orig, aug, flips):
    """The ``(dy, dx, flipped)`` that turns ``orig`` into ``aug``, or None."""
    for flipped in flips:
        src = orig[..., ::-1] if flipped else orig
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                if np.array_equal(_shifted(src, dy, dx), aug):
                    return dy, dx, flipped
    return None


@pytest.mark.parametrize("mode", ["shift", "flip", "shift+flip"])
def test_augment_batch_moves_each_image_and_keeps_its_place(mode):
    x = _images()
    aug = augment_batch(x, mode, torch.Generator().manual_seed(3))
    assert aug.shape == x.shape and aug.dtype == x.dtype
    assert not torch.equal(aug, x)  # something moved
    flips = (False, True) if "flip" in mode else (False,)
    found = []
    for i in range(len(x)):
        # image i of the batch is a shift / mirror of image i (never of another one), so the
        # labels, indexed like the batch, stay with their images
        t = _transform_of(x[i].numpy(), aug[i].numpy(), flips)
        assert t is not None, f"image {i} is not a transform of its input"
        if "shift" not in mode:
            assert t[:2] == (0, 0)
        found.append(t)
    shifts = {t[:2] for t in found}
    if "shift" in mode:
        # 64 draws of 25 equally likely shifts: every |d| <= 2, and many different ones
        assert len(shifts) >= 10 and max(max(abs(a), abs(b)) for a, b in shifts) == 2
    if "flip" in mode:
        n = sum(t[2] for t in found)
        assert 10 < n < 54  # about half mirrored
    # the input is not modified
    np.testing.assert_array_equal(x.numpy(), _images().numpy())


def test_augment_batch_is_deterministic_with_a_seed():
    x = _images()
    a = augment_batch(x, "shift+flip", torch.Generator().manual_seed(7))
    b = augment_batch(x, "shift+flip", torch.Generator().manual_seed(7))
    c = augment_batch(x, "shift+flip", torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(augment_batch(x, "none", torch.Generator()), x)


def test_augment_errors():
    with pytest.raises(ValueError, match="unknown augmentation"):
        augment_batch(_images(4), "rotate", torch.Generator())
    with pytest.raises(ValueError, match="image batches"):
        augment_batch(torch.zeros(4, 16), "shift", torch.Generator())
    with pytest.raises(ValueError, match="unknown augmentation"):
        train(LeNet5((1, 12, 12)), _images(4, 1, 12, 12), torch.zeros(4, dtype=torch.long),
              epochs=1, augment="crop", quiet=True)  # fmt: skip
    assert AUGMENTATIONS[0] == "none"


def test_training_with_augmentation_is_seeded_and_differs_from_plain():
    x = _images(96, 1, 12, 12)
    y = torch.as_tensor(np.random.default_rng(1).integers(0, 10, 96))

    def run(augment, seed=0):
        torch.manual_seed(0)
        m = LeNet5((1, 12, 12))
        train(m, x, y, epochs=2, batch=32, seed=seed, augment=augment, quiet=True)
        return torch.cat([p.detach().flatten() for p in m.parameters()])

    a, b = run("shift+flip"), run("shift+flip")
    assert torch.equal(a, b)
    assert not torch.equal(a, run("none"))
    assert not torch.equal(a, run("shift+flip", seed=1))
