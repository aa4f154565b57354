"""A labelled set of inputs with a fixed train/test split: what the zoo loads and the explorers show."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images in the classifier's input space, their labels and a fixed train/test split."""

    images: torch.Tensor  # (N, *input_shape) float32
    labels: torch.Tensor  # (N,) int64
    class_names: tuple[str, ...]
    train_indices: np.ndarray  # (N_train,) int64
    test_indices: np.ndarray  # (N_test,) int64

    def __len__(self) -> int:
        return int(self.labels.numel())

    def __repr__(self) -> str:
        return (
            f"Dataset(n={len(self)}, input_shape={tuple(self.images.shape[1:])}, classes={len(self.class_names)}, "
            f"train={self.train_indices.size}, test={self.test_indices.size})"
        )

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images, labels)`` of the ``"train"`` or ``"test"`` part."""
        if name not in ("train", "test"):
            raise ValueError(f"`name` must be 'train' or 'test'; got {name!r}.")
        indices = torch.as_tensor(self.train_indices if name == "train" else self.test_indices)
        return self.images[indices], self.labels[indices]


__all__ = ["Dataset"]
