"""Remembered Gaussian-process fits: the same fit is not paid for twice.

A benchmark repeats campaigns over seeds. With a noise-free simulated lab, a GP strategy (ours or BayBE's) sees the
same measurements in every seed until its Monte-Carlo acquisition picks differently, and each of those identical
steps used to refit the same GP from scratch (BayBE: about 300 L-BFGS steps on 1,248 points, 90-150 s).
``GPFitMemo`` returns the remembered result instead: the fit is a deterministic function of what the key holds.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from copy import deepcopy
from typing import Any, Iterator

import botorch.fit
import torch
from botorch.fit import fit_gpytorch_mll
from gpytorch.mlls import MarginalLogLikelihood


class GPFitMemo:
    """``fit(mll, **options)`` ≡ BoTorch's ``fit_gpytorch_mll(mll, **options)``, remembered under a key of everything
    the fit depends on: the model's training inputs and targets, the MLL's parameters and buffers before the fit
    (initial or warm-started hyper-parameters, transforms' state) and ``options``.

    BoTorch's first fit attempt starts from those parameters and draws no random numbers, so equal keys give equal
    fits. A fit that drew random numbers (a retry from prior samples) or that failed (the MLL left in training mode)
    is not remembered. ``reused`` and ``fitted`` count the two outcomes."""

    def __init__(self) -> None:
        self._fitted: dict[str, dict[str, torch.Tensor]] = {}
        self.reused = 0
        self.fitted = 0

    def fit(self, mll: MarginalLogLikelihood, **options: Any) -> MarginalLogLikelihood:
        key = fit_key(mll, options)
        if key in self._fitted:
            mll.load_state_dict(self._fitted[key])
            self.reused += 1
            return mll.eval()
        generator_state = torch.random.get_rng_state()
        fit_gpytorch_mll(mll, **options)
        self.fitted += 1
        if not mll.training and torch.equal(generator_state, torch.random.get_rng_state()):
            self._fitted[key] = deepcopy(mll.state_dict())
        return mll

    @contextmanager
    def in_botorch(self) -> Iterator["GPFitMemo"]:
        """Within the block, code that calls ``botorch.fit.fit_gpytorch_mll`` (BayBE's GP surrogate) uses ``fit``."""
        original = botorch.fit.fit_gpytorch_mll
        botorch.fit.fit_gpytorch_mll = self.fit
        try:
            yield self
        finally:
            botorch.fit.fit_gpytorch_mll = original

    def summary(self) -> dict[str, int]:
        return {"fitted": self.fitted, "reused": self.reused}


def fit_key(mll: MarginalLogLikelihood, options: dict[str, Any]) -> str:
    """SHA-256 of the training data, the MLL's state (names, dtypes, shapes, values) and the fit options."""
    digest = hashlib.sha256(repr(sorted(options.items())).encode())
    model = mll.model
    tensors = [("train_inputs", x) for x in model.train_inputs] + [("train_targets", model.train_targets)]
    for name, value in tensors + sorted(mll.state_dict().items()):
        value = value.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.numpy().tobytes())
    return digest.hexdigest()
