"""BayBE's default recommender as a benchmark baseline (``pip install -e ".[bench]"``).

The pool is one BayBE ``CustomDiscreteParameter`` named ``candidate``: its labels are the pool's row numbers and
its encoding is our descriptor table, the way BayBE takes a user's own descriptors for a discrete choice. BayBE
keeps its defaults: the encoding is decorrelated (98 HOIP columns → 14), the surrogate is its Gaussian process
fitted from scratch at every recommendation, the acquisition its default, already measured rows are excluded.
Given a ``GPFitMemo``, a GP fit on exactly the data of an earlier one (another seed's identical step) is reused.
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import numpy as np
import pandas as pd
import torch

from e2t_al.acquisition.batch import Objective
from e2t_al.acquisition.fit_memo import GPFitMemo
from e2t_al.data import DataError

PARAMETER = "candidate"
TARGET = "y"


class BayBEProposer:
    """Batches from BayBE's default recommender over a fixed pool ``features`` ``(n, d)``; the search space is
    built once and shared by every ``propose`` call."""

    def __init__(self, features: np.ndarray, objective: Objective, fit_memo: GPFitMemo | None = None):
        from baybe.parameters import CustomDiscreteParameter
        from baybe.searchspace import SearchSpace

        if objective.kind == "target_window":
            raise DataError("the baybe strategy supports max and min objectives only")
        self.labels = np.array([str(i) for i in range(len(features))])
        frame = pd.DataFrame(features, index=self.labels, columns=[f"x{j}" for j in range(features.shape[1])])
        frame = frame.loc[:, frame.nunique() > 1]  # a constant column carries nothing and BayBE refuses it
        clock = time.perf_counter()
        self.searchspace = SearchSpace.from_product([CustomDiscreteParameter(name=PARAMETER, data=frame)])
        self.build_seconds = time.perf_counter() - clock
        self.minimise = objective.kind == "minimise"
        self.fit_memo = fit_memo

    def propose(self, measured: np.ndarray, y: np.ndarray, batch: int, seed: int = 0) -> np.ndarray:
        """Row numbers of ``batch`` unmeasured candidates, given the mask ``measured`` ``(n,)`` and its values ``y``."""
        from baybe import Campaign
        from baybe.targets import NumericalTarget

        target = NumericalTarget(name=TARGET, minimize=self.minimise)
        campaign = Campaign(searchspace=self.searchspace, objective=target.to_objective(),
                            allow_recommending_already_measured=False)
        campaign.add_measurements(pd.DataFrame({PARAMETER: self.labels[measured], TARGET: y}))
        with torch.random.fork_rng(), self.fit_memo.in_botorch() if self.fit_memo else nullcontext():
            torch.manual_seed(seed)  # BayBE draws its Monte-Carlo samples from torch's global generator
            recommended = campaign.recommend(batch_size=batch)[PARAMETER]
        return recommended.astype(int).to_numpy()
