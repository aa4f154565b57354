"""Write the zoo's embedded data sets from scikit-learn, their source: ``python scripts/make_zoo_data.py``.

``boundary_widgets/zoo/datasets/NAME.npz`` holds each set's arrays exactly as ``zoo.data`` returns
them (same values, order and dtype) and its fixed train/test split, so that loading a data set
never imports scikit-learn. ``tests/test_zoo.py`` checks the shipped files equal :func:`arrays`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from boundary_widgets.zoo import data


def _split(labels: np.ndarray) -> dict[str, np.ndarray]:
    """A stratified 75/25 split, seeded, as sorted int64 indices."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(np.arange(labels.size), test_size=0.25, random_state=0, stratify=labels)
    return {"train": np.sort(train).astype(np.int64), "test": np.sort(test).astype(np.int64)}


def arrays() -> dict[str, dict[str, np.ndarray]]:
    """Data set name -> its arrays: ``inputs`` (float32) and ``labels`` (int64) where shipped, ``train``, ``test``."""
    from sklearn.datasets import load_digits, make_moons

    digits = load_digits()
    digits_labels = digits.target.astype(np.int64)
    points, moons_labels = make_moons(n_samples=1000, noise=0.15, random_state=0)
    return {
        "digits": {
            "inputs": (digits.images / 16.0).astype(np.float32)[:, None],  # (1797, 1, 8, 8) in [0, 1]
            "labels": digits_labels,
            **_split(digits_labels),
        },
        "moons": {"inputs": points.astype(np.float32), "labels": moons_labels.astype(np.int64), **_split(moons_labels)},
        # dct_band draws its images from a seeded generator; only its split comes from here
        "dct_band": _split(data.dct_band_labels()),
    }


def main() -> None:
    for name, named in arrays().items():
        path = Path(str(data.path(name)))
        np.savez_compressed(path, **named)
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
