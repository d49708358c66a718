"""Campaign set-up from a config: the lab's own candidates, its starting measurements, and references to prior
knowledge (public data sets or earlier campaigns), checked before anything is written and written in one
transaction.

A bundled demo campaign (``dataset`` + ``unexplored_domains``) has the unexplored domains' materials as its
candidates and the rest of the data set, labelled, as its prior knowledge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlmodel import Session

from db import service
from db.importers import (candidates_from_cif_folder, candidates_from_csv, candidates_from_dataset,
                          measurements_from_csv)
from db.schemas import CampaignIn
from db.service import CandidateRow, RowProblem
from e2t_al.config import CampaignConfig, CandidateSource, PriorSource
from e2t_al.data import DATASET_KINDS, DATASET_OF_KIND, PARSERS, DataError, load_dataset
from e2t_al.data.dataset import MaterialsDataset
from e2t_al.data.paths import PUBLIC_ORIGINALS
from e2t_al.features import DESCRIPTOR_SETS


@dataclass
class PriorDuplicate:
    """A candidate of the lab that is also a prior material (same material by ``matched_by``)."""

    line: str
    candidate: str
    prior_source: str
    prior_identifier: str
    prior_value: float
    matched_by: str

    def __str__(self) -> str:
        return (f"{self.line} ({self.candidate}) is {self.prior_identifier} of {self.prior_source} "
                f"(prior value {self.prior_value:.4g}; same {self.matched_by})")


@dataclass
class CampaignSetup:
    campaign: object
    candidates: int
    measured: int
    prior: dict[str, int] = field(default_factory=dict)  # prior source → materials it contributes
    duplicates: list[PriorDuplicate] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # the lab's candidates left out (prior_duplicates: skip_own)

    def line(self) -> str:
        prior = ", ".join(f"{name}: {n}" for name, n in self.prior.items()) or "none"
        return (f"campaign {self.campaign.name!r}: {self.candidates} candidates, {self.measured} measured; "
                f"prior knowledge {prior}")


# ---- reading the sources (no writes) -------------------------------------------------------------------------
@dataclass
class PriorMaterials:
    source: PriorSource
    dataset: MaterialsDataset  # labelled for the target
    target: str
    unit: str
    rows: list[CandidateRow]
    excluded: np.ndarray  # (n,) in an excluded domain of this campaign

    @property
    def name(self) -> str:
        return f"{self.source.dataset}/{self.target}"


def domain_key(dataset: MaterialsDataset, domain: str) -> str:
    """The data set's name for ``domain`` in any element order (``I-Pb`` → ``Pb-I``); ``DataError`` naming the known ones."""
    keys = dataset.all_domain_keys()
    if domain in keys:
        return domain
    wanted = service.domain_elements(domain)
    match = [k for k in keys if service.domain_elements(k) == wanted]
    if not match:
        raise DataError(f"{dataset.name} has no element domain {domain!r}; known: {', '.join(keys)}")
    return match[0]


def in_domains(dataset: MaterialsDataset, domains: list[str]) -> np.ndarray:
    mask = np.zeros(len(dataset), dtype=bool)
    for domain in domains:
        mask |= dataset.in_domain(domain_key(dataset, domain))
    return mask


def read_candidates(source: CandidateSource, datasets: dict[str, MaterialsDataset]) -> tuple[list[CandidateRow], list[RowProblem]]:
    if source.csv is not None:
        return candidates_from_csv(source.csv)
    if source.cif_dir is not None:
        return candidates_from_cif_folder(source.cif_dir)
    dataset = datasets[source.dataset]
    if source.domains:
        dataset = dataset.subset(in_domains(dataset, source.domains))
    return candidates_from_dataset(dataset)


def read_prior(source: PriorSource, config: CampaignConfig, datasets: dict[str, MaterialsDataset]) -> PriorMaterials:
    dataset = datasets[source.dataset]
    target = source.target or config.target
    if target not in dataset.target_names:
        raise DataError(f"prior {source.dataset}: no target {target!r}; choose one of {dataset.target_names} "
                        f"(prior: [{{dataset: {source.dataset}, target: ...}}])")
    dataset = dataset.labelled(target)  # stored whole, once; the campaign's link leaves out its excluded domains
    rows, _ = candidates_from_dataset(dataset)
    excluded = in_domains(dataset, source.exclude_domains)
    return PriorMaterials(source, dataset, target, dataset.units.get(target) or config.unit, rows, excluded)


def check_descriptors(config: CampaignConfig, kind: str) -> None:
    """The encoder's descriptor sets must apply to the candidates' representation; the error names those that do."""
    fits = DATASET_OF_KIND[kind]  # the data set whose descriptors fit the representation
    wrong = [d for d in config.ensemble.model.encoder.descriptors if d not in DESCRIPTOR_SETS or fits not in DESCRIPTOR_SETS[d].datasets]
    if wrong:
        usable = [name for name, s in DESCRIPTOR_SETS.items() if fits in s.datasets]
        raise DataError(f"descriptors {wrong} do not apply to {kind} candidates; for {kind} use "
                        f"ensemble.model.encoder.descriptors from {usable}")


def material_keys(kind: str, objects) -> list[tuple[str, object]]:
    """What makes two materials the same: (reduced formula | canonical SMILES, structure or None)."""
    if kind == "smiles":
        from rdkit import Chem
        return [(Chem.MolToSmiles(o), None) for o in objects]
    if kind == "formula":
        return [(o.reduced_formula, None) for o in objects]
    return [(o.composition.reduced_formula, o) for o in objects]


def find_prior_duplicates(rows: list[CandidateRow], prior: PriorMaterials) -> list[PriorDuplicate]:
    """The lab's candidates that are prior materials: same reduced composition (formulas), canonical SMILES, or
    a structure pymatgen's ``StructureMatcher`` matches among those of the same reduced formula (CIFs)."""
    if not rows:
        return []
    kind = rows[0].data.representation_kind
    own = material_keys(kind, [PARSERS[kind](row.data.representation) for row in rows])
    theirs: dict[str, list[int]] = {}
    for i, (key, _) in enumerate(material_keys(kind, prior.dataset.objects)):
        if not prior.excluded[i]:
            theirs.setdefault(key, []).append(i)
    values = prior.dataset.target(prior.target)
    matcher = None
    duplicates = []
    for row, (key, structure) in zip(rows, own):
        for i in theirs.get(key, []):
            if structure is not None:
                from pymatgen.analysis.structure_matcher import StructureMatcher
                matcher = matcher or StructureMatcher()
                if not matcher.fit(structure, prior.dataset.objects[i]):
                    continue
            how = {"smiles": "canonical SMILES", "formula": "reduced composition", "cif": "matched structure"}[kind]
            duplicates.append(PriorDuplicate(row.line, row.data.identifier, prior.name,
                                             str(prior.dataset.ids[i]), float(values[i]), how))
            break
    return duplicates


# ---- the campaign ------------------------------------------------------------------------------------------
def config_datasets(config: CampaignConfig, loaded: MaterialsDataset | None = None) -> dict[str, MaterialsDataset]:
    """The bundled data sets the config reads (candidates, prior), loaded once; ``loaded`` is reused."""
    datasets = {loaded.name: loaded} if loaded is not None else {}
    names = {config.candidate_source().dataset, *(p.dataset for p in config.prior_sources())} - {None}
    for name in sorted(names - set(datasets)):
        datasets[name] = load_dataset(name, config.data_dir)
    return datasets


def create_campaign_from_config(session: Session, config: CampaignConfig,
                                dataset: MaterialsDataset | dict[str, MaterialsDataset] | None = None,
                                actor: str = "system") -> CampaignSetup:
    """Campaign row, its candidates, prior references and starting measurements, in the caller's transaction: all
    of it lands or none. ``dataset``: a bundled data set already loaded, or ``config_datasets``. Refused with the
    reason: candidates of mixed representations (by line), descriptors that do not fit them, prior duplicates
    when ``prior_duplicates`` is ``ask``, a prior without the target, and every bad measurement row."""
    datasets = dict(dataset) if isinstance(dataset, dict) else config_datasets(config, dataset)
    source, priors = config.candidate_source(), config.prior_sources()
    rows, problems = read_candidates(source, datasets)
    if problems:
        raise service.ImportRefused(problems=problems)
    if not rows:
        raise DataError("the campaign has no candidates: check `candidates:` in its config")
    kind = rows[0].data.representation_kind
    check_descriptors(config, kind)
    prior_materials = [read_prior(p, config, datasets) for p in priors if p.dataset is not None]
    mixed = [m for m in prior_materials if DATASET_KINDS[m.source.dataset] != kind]
    if mixed:
        raise DataError(f"prior {mixed[0].source.dataset} holds {DATASET_KINDS[mixed[0].source.dataset]} materials, the "
                        f"candidates are {kind}: prior knowledge must share the candidates' representation")
    duplicates = [d for m in prior_materials for d in find_prior_duplicates(rows, m)] if config.candidates is not None else []
    if duplicates and config.prior_duplicates == "ask":
        raise DataError("\n".join([f"{len(duplicates)} candidate(s) duplicate prior data; choose with prior_duplicates: keep_own "
                                   "(your value, the prior entry left out) or skip_own (the prior value, your candidate left out):",
                                   *(f"  {d}" for d in duplicates)]))
    skipped = {d.candidate for d in duplicates} if config.prior_duplicates == "skip_own" else set()
    rows = [row for row in rows if row.data.identifier not in skipped]

    campaign = service.create_campaign(session, CampaignIn(
        name=config.name, target_property=config.target, unit=config.unit, objective=config.objective,
        target_low=config.target_low, target_high=config.target_high, valid_min=config.valid_min,
        valid_max=config.valid_max, dataset=config.dataset if config.candidates is None else source.dataset,
        config=config.model_dump(mode="json")), actor=actor)
    service.import_candidates(session, campaign, rows, actor=actor)
    for materials in prior_materials:
        stored = service.store_prior_set(session, materials.source.dataset, materials.target, materials.unit, kind, materials.rows,
                                         materials.dataset.target(materials.target).tolist(), provenance(materials, config))
        replaced = [d.prior_identifier for d in duplicates if d.prior_source == materials.name and d.candidate not in skipped]
        service.link_prior(session, campaign, prior_set=stored, excluded_domains=materials.source.exclude_domains,
                           excluded_identifiers=replaced, actor=actor)
    for prior in priors:
        if prior.campaign is not None:
            service.link_prior(session, campaign, source_campaign=service.get_campaign(session, prior.campaign),
                               excluded_domains=prior.exclude_domains, actor=actor)
    measured = 0
    if config.measurements is not None:
        measurement_rows, measurement_problems = measurements_from_csv(config.measurements.csv, config.measurements.operator)
        measurement_rows = [(line, m) for line, m in measurement_rows if m.candidate not in skipped]
        measured = len(service.import_measurements(session, campaign, measurement_rows, measurement_problems))
    return CampaignSetup(campaign, len(rows), measured,
                         {name: n for _, name, n in service.campaign_priors(session, campaign)},
                         duplicates, sorted(skipped))


def provenance(materials: PriorMaterials, config: CampaignConfig) -> dict:
    expected, origin = PUBLIC_ORIGINALS.get(materials.source.dataset, ("", ""))
    return {"dataset": materials.source.dataset, "target": materials.target, "unit": materials.unit,
            "materials": len(materials.rows), "files": expected, "public_original": origin,
            "excluded_domains": list(materials.source.exclude_domains),
            "data_dir": str(Path(config.data_dir).resolve()) if config.data_dir else None}
