"""Where the public data sets live: a configured folder, ``$E2T_AL_DATA_DIR``, or ``../shared/data``."""

from __future__ import annotations

import os
from pathlib import Path

from e2t_al.data.dataset import DataError

DATA_DIR_ENV = "E2T_AL_DATA_DIR"
PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: Expected file inside the data folder, and where the public original comes from.
PUBLIC_ORIGINALS: dict[str, tuple[str, str]] = {
    "hoip": (
        "hoip/band_gaps.csv and hoip/cifs/perov_N.cif",
        "C. Kim et al., 'A hybrid organic-inorganic perovskite dataset', Sci. Data 4, 170057 (2017), "
        "doi:10.1038/sdata.2017.57 (CC BY 4.0); the CIFs as redistributed in GitHub repository ngs00/ane, "
        "folder materials_property_prediction/datasets/hoip_high",
    ),
    "polymers": (
        "radonpy/PI1070.csv",
        "RadonPy, Y. Hayashi et al., npj Comput. Mater. 8, 222 (2022): file data/PI1070.csv of GitHub "
        "repository RadonPy/RadonPy (BSD-3-Clause)",
    ),
    "mp": (
        "mp_elastic/materials.csv",
        "The Materials Project (CC BY 4.0), elastic subset as assembled in GitHub repository ngs00/ane, "
        "folder materials_property_prediction/datasets/mps",
    ),
}


def default_data_dir_candidates() -> list[Path]:
    return [Path.cwd().parent / "shared" / "data", PROJECT_ROOT.parent / "shared" / "data"]


def resolve_data_dir(configured: str | Path | None = None) -> Path:
    """The data folder: ``configured`` if given, else ``$E2T_AL_DATA_DIR``, else ``../shared/data`` if it exists."""
    if configured is not None:
        path = Path(configured).expanduser()
        if not path.is_dir():
            raise DataError(f"data folder {path} (from configuration) does not exist.\n{_where_to_get_it()}")
        return path
    if env := os.environ.get(DATA_DIR_ENV):
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataError(f"data folder {path} (from ${DATA_DIR_ENV}) does not exist.\n{_where_to_get_it()}")
        return path
    for candidate in default_data_dir_candidates():
        if candidate.is_dir():
            return candidate
    tried = ", ".join(str(p) for p in default_data_dir_candidates())
    raise DataError(f"no data folder found (tried {tried}); set ${DATA_DIR_ENV} or data_dir in the config.\n{_where_to_get_it()}")


def require_file(path: Path, dataset: str) -> Path:
    if not path.exists():
        raise DataError(f"{dataset}: missing {path}.\n{_where_to_get_it(dataset)}")
    return path


def _where_to_get_it(dataset: str | None = None) -> str:
    names = [dataset] if dataset else list(PUBLIC_ORIGINALS)
    lines = ["The public originals, to be placed in the data folder:"]
    for name in names:
        layout, source = PUBLIC_ORIGINALS[name]
        lines.append(f"  {name}: {layout} <- {source}")
    return "\n".join(lines)
