"""One iteration of the closed loop, as plain functions (the Prefect flows in ``flows/`` only orchestrate them):

    read_state (``state``) → pool_features → train_member (once) → fine_tune (now and then) → score_and_choose → record

State lives in the store (``db``); models and feature caches live under ``<artifacts_dir>/<campaign>/``. The rows
are the campaign's candidates and its prior materials (``CampaignState``): the model learns from every measured
row, the batch comes from the candidates.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from db import service
from e2t_al.acquisition.batch import BatchProposal, Objective, pool_predictions, propose_batch
from e2t_al.acquisition.novelty import composition_novelty, embedding_novelty
from e2t_al.acquisition.surrogates import e2t_surrogate
from e2t_al.campaign.state import CampaignState, campaign_scope, domain_keys
from e2t_al.config import CampaignConfig
from e2t_al.data import DATASET_OF_KIND, PARSERS
from e2t_al.data.dataset import DataError, MaterialsDataset, object_array
from e2t_al.features import describe
from e2t_al.model.e2t import E2TRegressor
from e2t_al.model.ensemble import E2TEnsemble
from e2t_al.model.inputs import DescriptorInputs


# ---- features ----------------------------------------------------------------------------------------------
def candidates_as_dataset(state: CampaignState) -> MaterialsDataset:
    """The candidates parsed back into a ``MaterialsDataset`` (what the featurisers read)."""
    kinds = set(state.kinds.tolist())
    if len(kinds) != 1:
        raise DataError(f"campaign {state.name!r} mixes representations {sorted(kinds)}; one kind per campaign")
    kind = kinds.pop()
    objects = object_array([PARSERS[kind](text) for text in state.representations])
    keys = ([frozenset(el.symbol for el in o.elements) for o in objects] if kind == "formula"
            else [frozenset({d}) for d in state.domains])
    return MaterialsDataset(name=DATASET_OF_KIND[kind], ids=state.identifiers, representations=state.representations,
                            objects=objects, targets=pd.DataFrame(index=range(len(objects))), domains=state.domains,
                            domain_keys=keys)


def pool_features(state: CampaignState, progress: bool = False) -> np.ndarray:
    """Descriptor features of every candidate ``(n, d)``, cached on disk by the candidates' content."""
    descriptors = state.config.ensemble.model.encoder.descriptors
    digest = hashlib.sha256(json.dumps([descriptors, state.identifiers.tolist()]).encode())
    for text in state.representations:
        digest.update(hashlib.sha256(text.encode()).digest())
    cache = state.folder / "features" / f"{digest.hexdigest()[:16]}.npy"
    if cache.exists():
        return np.load(cache)
    features, _ = describe(candidates_as_dataset(state), descriptors, progress=progress)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, features)
    return features


# ---- model -------------------------------------------------------------------------------------------------
def pretrained_path(state: CampaignState) -> Path:
    return state.folder / "models" / "pretrained"


def train_member(state: CampaignState, features: np.ndarray, k: int, progress: bool = False):
    """Member ``k`` of the campaign's ensemble, meta-trained on the measured candidates."""
    ensemble = E2TEnsemble(state.config.ensemble)
    measured = state.measured
    inputs = DescriptorInputs(torch.as_tensor(features[measured], dtype=torch.float32), [])
    keys = [key for key, m in zip(domain_keys(state), measured) if m]
    return E2TRegressor(ensemble.member_config(k)).fit(inputs, state.measured_value[measured], keys, progress=progress)


def save_ensemble(state: CampaignState, members: list, folder: Path) -> E2TEnsemble:
    ensemble = E2TEnsemble(state.config.ensemble)
    ensemble.members = list(members)
    ensemble.save(folder)
    return ensemble


def new_measurements_since(state: CampaignState, seen_ids: list[int]) -> list[int]:
    return sorted(set(state.measurement_ids) - set(seen_ids))


def fine_tune(state: CampaignState, ensemble: E2TEnsemble, features: np.ndarray, new_identifiers: set[str], folder: Path,
              progress: bool = False) -> E2TEnsemble:
    """Fine-tune on every measured candidate, the ``new_identifiers`` being the new domain's measurements."""
    measured = np.flatnonzero(state.measured)
    inputs = DescriptorInputs(torch.as_tensor(features[measured], dtype=torch.float32), [])
    keys = [domain_keys(state)[i] for i in measured]
    new_index = np.flatnonzero(np.isin(state.identifiers[measured], list(new_identifiers)))
    tuned = ensemble.fine_tune(inputs, state.measured_value[measured], keys, new_index, state.config.adaptation, progress=progress)
    tuned.save(folder)
    return tuned


# ---- prediction and proposal -------------------------------------------------------------------------------
@dataclass
class PoolScores:
    """Per candidate ``(n,)``: predictive mean and standard deviation (member spread and the members'
    measured extrapolation error), and novelty by embedding and by element domain."""

    mean: np.ndarray
    std: np.ndarray
    embedding_novelty: np.ndarray
    domain_novelty: np.ndarray


def objective_of(config: CampaignConfig) -> Objective:
    return Objective(config.objective, config.target_low, config.target_high)


def score_and_choose(state: CampaignState, ensemble: E2TEnsemble, features: np.ndarray) -> tuple[PoolScores, BatchProposal]:
    """Score every candidate with the configured surrogate (``acquisition.surrogate``) and choose the batch; the
    scores and the acquisition read the same pooled posterior. The incumbent is taken in the campaign's scope."""
    config = state.config.acquisition
    measured = state.measured
    scope = campaign_scope(state)
    pooled = e2t_surrogate(config, ensemble, features, measured, state.measured_value[measured], state.domains,
                           in_scope=scope)
    mean, std = pool_predictions(pooled.model, pooled.pool_X, config.chunk_size)
    if config.surrogate == "e2t":  # the ensemble's calibrated interval, not only the members' spread
        std = pooled.ensemble_model.interval_std(torch.as_tensor(features), config.chunk_size)
    embeddings = pooled.ensemble_model.embed(torch.as_tensor(features))
    scores = PoolScores(mean, std, embedding_novelty(embeddings, embeddings[torch.as_tensor(measured)]),
                        composition_novelty(state.domains.tolist(), set(state.domains[measured].tolist())))
    batch = propose_batch(pooled.model, pooled.pool_X, measured, state.measured_value[measured], config,
                          objective_of(state.config), pending=state.pending, domains=state.domains,
                          in_scope=scope, excluded=state.retired, error_floor=ensemble.error_floor(), seed=state.iteration)
    return scores, batch


def candidate_predictions(state: CampaignState, scores: PoolScores) -> tuple[list[int], list[float], list[float], list[float]]:
    """The scores of the campaign's own candidates (store ids, mean, std, novelty); prior materials are not recorded."""
    own = np.flatnonzero(~state.prior)
    return ([int(i) for i in state.candidate_ids[own]], scores.mean[own].tolist(), scores.std[own].tolist(),
            scores.embedding_novelty[own].tolist())


def proposed_candidates(state: CampaignState, batch: BatchProposal, scores: PoolScores) -> list[service.ProposedCandidate]:
    return [service.ProposedCandidate(int(state.candidate_ids[i]), float(scores.mean[i]), float(scores.std[i]),
                                      float(value), float(scores.embedding_novelty[i]), chosen_by)
            for i, value, chosen_by in zip(batch.indices, batch.acquisition_values, batch.chosen_by())]


def batch_table(state: CampaignState, batch: BatchProposal, scores: PoolScores) -> list[dict]:
    """The proposed batch as rows for people: rank, candidate, domain, novelty, prediction, acquisition value, and
    what chose it: the highest predicted mean (an exploitation place) or the acquisition function."""
    return [{"rank": r, "candidate": str(state.identifiers[i]), "domain": str(state.domains[i]),
             "predicted": round(float(scores.mean[i]), 3), "std": round(float(scores.std[i]), 3),
             "acquisition": round(float(v), 4), "novelty": round(float(scores.embedding_novelty[i]), 2),
             "domain_novelty": round(float(scores.domain_novelty[i]), 2),
             "chosen_by": chosen_by}
            for r, (i, v, chosen_by) in enumerate(zip(batch.indices, batch.acquisition_values, batch.chosen_by()), start=1)]

