"""Readers that turn files and data sets into validated rows for the store, each bad row with its line and reason.

Nothing here writes: ``db.service.import_candidates`` / ``import_measurements`` take the rows and write all or nothing.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from pydantic import ValidationError

from db.schemas import CandidateIn, MeasurementIn, validation_reason
from db.service import CandidateRow, RowProblem
from e2t_al.data import DATASET_KINDS
from e2t_al.data.dataset import DataError, MaterialsDataset
from e2t_al.data.hoip import parse_cif, perovskite_domain
from e2t_al.data.mp import element_domain, parse_formula
from e2t_al.data.polymers import parse_smiles

REPRESENTATION_COLUMNS = ("cif", "smiles", "formula")
IDENTIFIER_COLUMNS = ("identifier", "id", "material_id")
DOMAIN_COLUMNS = ("element_domain", "domain", "polymer_class")


def element_domain_of(kind: str, representation: str) -> str:
    """Parse the representation (``DataError`` when malformed) and name its element domain:
    (B-site metal)-(halide) for a hybrid perovskite CIF, else the sorted element set."""
    if kind == "cif":
        structure = parse_cif(representation)
        try:
            return "-".join(perovskite_domain(structure))
        except DataError:
            return element_domain(structure.composition)
    if kind == "formula":
        return element_domain(parse_formula(representation))
    molecule = parse_smiles(representation)
    return "-".join(sorted({atom.GetSymbol() for atom in molecule.GetAtoms() if atom.GetSymbol() != "*"}))


def candidate_row(line: str, fields: dict, domain: str | None = None) -> CandidateRow | RowProblem:
    """One candidate from raw fields, parsed and given its domain (an explicit ``domain`` wins), or the problem."""
    identifier = str(fields.get("identifier") or "")
    try:
        data = CandidateIn.model_validate(fields)
        parsed_domain = element_domain_of(data.representation_kind, data.representation)
    except ValidationError as exc:
        return RowProblem(line, identifier, validation_reason(exc, "row"))
    except DataError as exc:
        return RowProblem(line, identifier, str(exc))
    return CandidateRow(line, data, (domain or "").strip() or parsed_domain)


def _split(results) -> tuple[list[CandidateRow], list[RowProblem]]:
    rows = [r for r in results if isinstance(r, CandidateRow)]
    return rows, [r for r in results if isinstance(r, RowProblem)]


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    if not path.is_file():
        raise DataError(f"no file {path}")
    try:
        return _parse_csv(path.read_text(encoding="utf-8-sig"), str(path))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not a readable CSV file: {exc}") from exc


def _parse_csv(text: str, source: str) -> tuple[list[str], list[dict]]:
    header = text.removeprefix("\ufeff").split("\n", 1)[0]
    for name, delimiter in (("semicolons", ";"), ("tabs", "\t")):
        if delimiter in header and "," not in header:
            raise DataError(f"{source}: the header is separated by {name}, not commas ({header.strip()[:80]!r}): save the "
                            "file as comma-separated CSV (in a spreadsheet: CSV, comma-delimited)")
    try:
        reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
        return [h.strip() for h in (reader.fieldnames or [])], [{(k or "").strip(): v for k, v in row.items()} for row in reader]
    except csv.Error as exc:
        raise DataError(f"{source} is not a readable CSV file: {exc}") from exc


def _first(columns: list[str], names: tuple[str, ...]) -> str | None:
    return next((c for c in names if c in columns), None)


def candidates_from_csv(path: str | Path) -> tuple[list[CandidateRow], list[RowProblem]]:
    """A CSV with an identifier column (``identifier``/``id``/``material_id``), one of ``smiles``/``formula``/``cif``,
    and optionally ``element_domain``/``domain``/``polymer_class``. Line numbers count the header as line 1."""
    path = Path(path)
    columns, records = _read_csv(path)
    id_column, kind = _first(columns, IDENTIFIER_COLUMNS), _first(columns, REPRESENTATION_COLUMNS)
    if id_column is None or kind is None:
        raise DataError(f"{path}: needs an identifier column ({'/'.join(IDENTIFIER_COLUMNS)}) and one of "
                        f"{'/'.join(REPRESENTATION_COLUMNS)}; found {columns}")
    domain_column = _first(columns, DOMAIN_COLUMNS)
    results = []
    for number, record in enumerate(records, start=2):
        if None in record:
            results.append(RowProblem(f"line {number}", str(record.get(id_column) or ""), "more fields than the header"))
            continue
        fields = {"identifier": record.get(id_column) or "", "representation_kind": kind,
                  "representation": record.get(kind) or "", "source": path.name}
        results.append(candidate_row(f"line {number}", fields, record.get(domain_column) if domain_column else None))
    return _split(results)


def candidates_from_cif_folder(folder: str | Path) -> tuple[list[CandidateRow], list[RowProblem]]:
    """Every ``*.cif`` in ``folder``; the identifier is the file name without ``.cif``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"no folder {folder}")
    results = []
    for path in sorted(folder.glob("*.cif")):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            results.append(RowProblem(path.name, path.stem, "not UTF-8 text"))
            continue
        results.append(candidate_row(path.name, {"identifier": path.stem, "representation_kind": "cif",
                                                 "representation": text, "source": path.name}))
    if not results:
        raise DataError(f"no .cif files in {folder}")
    return _split(results)


def candidates_from_dataset(dataset: MaterialsDataset) -> tuple[list[CandidateRow], list[RowProblem]]:
    """Every material of a loaded data set; it was parsed when loaded, so its domain is taken as loaded.
    The CIF text of HOIP entries is read back from the data set's ``representations``."""
    kind = DATASET_KINDS[dataset.name]
    rows, problems = [], []
    for i, (identifier, representation, domain) in enumerate(zip(dataset.ids, dataset.representations, dataset.domains)):
        try:
            data = CandidateIn(identifier=str(identifier), representation_kind=kind, representation=str(representation),
                               source=dataset.name)
        except ValidationError as exc:
            problems.append(RowProblem(f"{dataset.name} #{i}", str(identifier), validation_reason(exc, "row")))
            continue
        rows.append(CandidateRow(f"{dataset.name} #{i}", data, str(domain)))
    return rows, problems  # entries the loader skipped are in dataset.problems, reported by the caller


MEASUREMENT_COLUMNS = ("candidate", "value", "unit", "uncertainty", "method", "operator", "measured_at", "notes")


def measurements_from_csv(path: str | Path, operator: str | None = None) -> tuple[list[tuple[str, MeasurementIn]], list[RowProblem]]:
    """A CSV with columns ``candidate,value,unit`` and optionally ``uncertainty,method,operator,measured_at,notes``
    (``operator`` may instead be given for the whole file). Empty cells count as absent."""
    path = Path(path)
    return _measurement_rows(*_read_csv(path), str(path), operator)


def measurements_from_csv_text(text: str, source: str, operator: str | None = None) -> tuple[list[tuple[str, MeasurementIn]], list[RowProblem]]:
    """The same as ``measurements_from_csv`` for CSV text already in memory (an upload named ``source``)."""
    return _measurement_rows(*_parse_csv(text, source), source, operator)


def _measurement_rows(columns: list[str], records: list[dict], source: str,
                      operator: str | None) -> tuple[list[tuple[str, MeasurementIn]], list[RowProblem]]:
    missing = [c for c in ("candidate", "value", "unit") if c not in columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing}; expected {', '.join(MEASUREMENT_COLUMNS)}")
    unknown = [c for c in columns if c not in MEASUREMENT_COLUMNS]
    if unknown:
        raise DataError(f"{source}: unknown column(s) {unknown}; expected {', '.join(MEASUREMENT_COLUMNS)}")
    if "operator" not in columns and not operator:
        raise DataError(f"{source}: who measured? The file has no operator column and no operator was given: add an "
                        "operator column, or give --operator NAME (or set E2T_AL_OPERATOR)")
    rows, problems = [], []
    for number, record in enumerate(records, start=2):
        if None in record:
            problems.append(RowProblem(f"line {number}", str(record.get("candidate") or ""), "more fields than the header"))
            continue
        fields = {k: v for k, v in record.items() if v not in (None, "")}
        if operator and "operator" not in fields:
            fields["operator"] = operator
        try:
            rows.append((f"line {number}", MeasurementIn.model_validate(fields)))
        except ValidationError as exc:
            problems.append(RowProblem(f"line {number}", str(record.get("candidate") or ""), validation_reason(exc, "row")))
    return rows, problems
