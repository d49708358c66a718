"""BayBE's default recommender as a benchmark baseline (``pip install -e ".[bench]"``), and BayBE's own transfer
learning (``BayBETransferProposer``).

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

        if objective.kind == "target_window":
            raise DataError("the baybe strategies support max and min objectives only")
        self.labels = np.array([str(i) for i in range(len(features))])
        clock = time.perf_counter()
        self.searchspace = self.search_space(CustomDiscreteParameter(name=PARAMETER, data=descriptor_frame(features, self.labels)))
        self.build_seconds = time.perf_counter() - clock
        self.minimise = objective.kind == "minimise"
        self.fit_memo = fit_memo

    def search_space(self, candidate):
        from baybe.searchspace import SearchSpace

        return SearchSpace.from_product([candidate])

    def measurements(self, measured: np.ndarray, y: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({PARAMETER: self.labels[measured], TARGET: y})

    def propose(self, measured: np.ndarray, y: np.ndarray, batch: int, seed: int = 0) -> np.ndarray:
        """Row numbers of ``batch`` unmeasured candidates, given the mask ``measured`` ``(n,)`` and its values ``y``."""
        from baybe import Campaign
        from baybe.targets import NumericalTarget

        target = NumericalTarget(name=TARGET, minimize=self.minimise)
        campaign = Campaign(searchspace=self.searchspace, objective=target.to_objective(),
                            allow_recommending_already_measured=False)
        campaign.add_measurements(self.measurements(measured, y))
        with torch.random.fork_rng(), self.fit_memo.in_botorch() if self.fit_memo else nullcontext():
            torch.manual_seed(seed)  # BayBE draws its Monte-Carlo samples from torch's global generator
            recommended = campaign.recommend(batch_size=batch)[PARAMETER]
        return recommended.astype(int).to_numpy()


TASK = "task"
TARGET_TASK = "target"
SOURCE_PER_TASK = 30  # measured rows of each source domain given to baybe-transfer (see BayBETransferProposer)


REPEAT_SHIFT = 1e-6  # of the first column's range, per repeat of a descriptor row (see descriptor_frame)


def descriptor_frame(features: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """The descriptor table BayBE takes for the ``candidate`` parameter.

    BayBE refuses constant columns (dropped here) and repeated rows. Candidates with the same descriptors are real:
    polymorphs of one composition (mp), polymers with one fingerprint. The k-th repeat of a row (k = 1, 2, …) is
    moved by k · ``REPEAT_SHIFT`` of the first column's range, so every candidate keeps its own label while the GP
    still sees the repeats as one point, as our own GP does."""
    frame = pd.DataFrame(features, index=labels, columns=[f"x{j}" for j in range(features.shape[1])])
    frame = frame.loc[:, frame.nunique() > 1]
    repeat = frame.groupby(pd.util.hash_pandas_object(frame, index=False).to_numpy()).cumcount().to_numpy()
    if repeat.any():
        first = frame.columns[0]
        frame[first] = frame[first] + repeat * REPEAT_SHIFT * (frame[first].max() - frame[first].min())
    return frame


class BayBETransferProposer(BayBEProposer):
    """BayBE's transfer learning, the peer that claims what E2T claims: a ``TaskParameter`` whose tasks are the
    source element domains (the prior knowledge, one task each) and ``target`` (the campaign's scope), the only
    active task. BayBE then fits its multi-task GP (an index kernel over tasks) on all measurements and recommends
    among the scope's unmeasured candidates only. ``tasks (n,)``: each row's task.

    ``source_per_task``: at most this many measured rows of each source task are given to BayBE (a seeded random
    subset, the same for every batch). BayBE's multi-task GP on all 1,248 HOIP source rows took about an hour for one
    recommendation on one core; None gives it everything."""

    def __init__(self, features: np.ndarray, objective: Objective, tasks: np.ndarray, fit_memo: GPFitMemo | None = None,
                 source_per_task: int | None = SOURCE_PER_TASK, seed: int = 0):
        self.tasks = np.asarray(tasks).astype(str)
        if TARGET_TASK not in set(self.tasks.tolist()):
            raise DataError("baybe-transfer needs candidates in the campaign's scope (the target task)")
        self.given = np.ones(len(self.tasks), dtype=bool)  # rows whose measurements BayBE sees
        if source_per_task is not None:
            rng = np.random.default_rng([seed, 104729])
            for task in set(self.tasks.tolist()) - {TARGET_TASK}:
                rows = np.flatnonzero(self.tasks == task)
                if len(rows) > source_per_task:
                    self.given[np.setdiff1d(rows, rng.choice(rows, source_per_task, replace=False))] = False
        super().__init__(features, objective, fit_memo)

    def search_space(self, candidate):
        from baybe.parameters import TaskParameter
        from baybe.searchspace import SearchSpace

        task = TaskParameter(name=TASK, values=sorted(set(self.tasks.tolist())), active_values=[TARGET_TASK])
        target = self.tasks == TARGET_TASK  # the search space holds the target task's rows; the others are data only
        return SearchSpace.from_dataframe(pd.DataFrame({PARAMETER: self.labels[target], TASK: TARGET_TASK}), [candidate, task])

    def measurements(self, measured: np.ndarray, y: np.ndarray) -> pd.DataFrame:
        keep = self.given[measured]
        return pd.DataFrame({PARAMETER: self.labels[measured][keep], TASK: self.tasks[measured][keep], TARGET: np.asarray(y)[keep]})
