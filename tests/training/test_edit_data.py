"""The edit-triplet builder: each classical edit does what its instruction says, and held-out emoji stay out."""

from __future__ import annotations

import cv2
import numpy as np

from limner.training.edit_data import (
    COLOUR_HUES,
    PHRASES,
    build_triplets,
    cartoon,
    flip,
    held_out,
    photo_texture,
    recolour,
    rescale,
    sketch,
)


def _emoji() -> np.ndarray:
    """A 32px 'emoji': an orange disc with a dark eye, on white."""
    image = np.full((32, 32, 3), 255, np.uint8)
    cv2.circle(image, (16, 16), 11, (240, 150, 30), -1)
    cv2.circle(image, (12, 13), 2, (40, 30, 20), -1)
    return image


def _mean_hue(image: np.ndarray, mask: np.ndarray) -> float:
    hsv = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)
    angles = np.deg2rad(hsv[..., 0][mask])
    return float(np.rad2deg(np.arctan2(np.sin(angles).mean(), np.cos(angles).mean())) % 360)


def test_recolour_moves_the_subjects_hue_and_leaves_the_white_background() -> None:
    image = _emoji()
    background = (image == 255).all(-1)
    subject = np.zeros(background.shape, bool)
    subject[12:20, 14:22] = True  # inside the disc, away from the eye
    assert abs(_mean_hue(image, subject) - 36) < 5
    for word in ("blue", "green", "purple"):
        out = recolour(image, COLOUR_HUES[word])
        assert abs(_mean_hue(out, subject) - COLOUR_HUES[word]) < 5, word
        assert (out[background] == 255).all(), word


def test_flip_mirrors_and_rescale_keeps_the_centre() -> None:
    image = _emoji()
    flipped = flip(image)
    assert (flipped[:, ::-1] == image).all()
    assert not (flipped == image).all()  # the eye moved to the other side
    bigger, smaller = rescale(image, 1.4), rescale(image, 0.7)
    subject = (image < 235).any(-1).sum()
    assert (bigger < 235).any(-1).sum() > 1.5 * subject
    assert (smaller < 235).any(-1).sum() < 0.7 * subject
    assert (smaller[0] == 255).all()  # padded with white


def test_sketch_is_dark_outlines_on_white() -> None:
    out = sketch(_emoji())
    values = set(np.unique(out).tolist())
    assert values == {0, 255}
    assert 0.03 < (out[..., 0] == 0).mean() < 0.4
    assert out[16, 18].tolist() == [255, 255, 255]  # the inside of the disc is not filled


def test_cartoon_filter_quantises_colours_of_a_textured_picture() -> None:
    textured = photo_texture(_emoji(), seed=1)
    colours_before = len(np.unique(textured.reshape(-1, 3), axis=0))
    result = cartoon(textured)
    colours_after = len(np.unique(result.reshape(-1, 3), axis=0))
    assert colours_before > 200  # the texture makes a flat emoji photo-like
    assert colours_after <= 4**3 < colours_before
    assert set(np.unique(result).tolist()) <= {0, 85, 170, 255}


def test_triplets_cover_every_edit_and_skip_held_out_emoji() -> None:
    records = [{"caption": f"emoji {i}", "unified": f"{0x1F600 + i:X}"} for i in range(60)]
    images = np.stack([_emoji()] * len(records))
    triplets = build_triplets(images, records, colours_per_image=2, seed=0)
    kept = {t.source for t in triplets}
    assert kept == {i for i, r in enumerate(records) if not held_out(r)}
    assert len(kept) < len(records)  # about 4% of emoji are held out; 60 include some
    kinds = {t.kind for t in triplets}
    assert set(PHRASES) <= kinds
    assert len(kinds & set(COLOUR_HUES)) >= 4
    assert all(t.before.shape == t.after.shape == (32, 32, 3) for t in triplets)
