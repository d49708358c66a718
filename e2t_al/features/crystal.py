"""Pretrained crystal features: CHGNet's crystal embedding (Deng et al., Nat. Mach. Intell. 2023; ``chgnet`` 0.4.2,
whose pretrained weights ship in the wheel, so it works offline).

Each structure's 64 features are ``CHGNet.predict_structure(..., task="e", return_crystal_feas=True)["crystal_fea"]``:
the pooled atom features that the pretrained energy head reads. Energy only (no forces or stress): the features do not
depend on the task, and skipping the backward pass makes it about 8x faster. They are computed once per structure
and cached on disk (one ``.npy`` per structure, named by the SHA-256 of its serialised form), so a stopped run keeps
what it computed and every later run reads them back.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from rich.progress import Progress

from e2t_al.data.dataset import DataError
from e2t_al.data.paths import PROJECT_ROOT

CACHE_ENV = "E2T_AL_CACHE_DIR"
FEATURES = 64
BATCH = 32  # structures per CHGNet call


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or PROJECT_ROOT / ".cache") / "chgnet-0.4.2"


def chgnet_names() -> list[str]:
    return [f"chgnet_{i}" for i in range(FEATURES)]


@lru_cache(maxsize=1)
def _model():
    try:
        from chgnet.model import CHGNet
    except ImportError as exc:
        raise DataError("descriptor set 'chgnet' needs the chgnet package: pip install chgnet==0.4.2 "
                        "(installed with the test and bench extras)") from exc
    return CHGNet.load(verbose=False)


def _key(structure) -> str:
    return hashlib.sha256(json.dumps(structure.as_dict(), sort_keys=True, default=str).encode()).hexdigest()


def chgnet_features(structures: list, progress: bool = False) -> np.ndarray:
    """CHGNet crystal features of ``structures`` (pymatgen ``Structure``), ``(n, 64)``; cached on disk."""
    folder = cache_dir()
    keys = [_key(s) for s in structures]
    missing = [i for i, k in enumerate(keys) if not (folder / f"{k}.npy").exists()]
    if missing:
        folder.mkdir(parents=True, exist_ok=True)
        model = _model()
        with Progress(disable=not progress) as bar:
            task = bar.add_task(f"CHGNet crystal features ({len(missing)} structures, cached in {folder})", total=len(missing))
            for start in range(0, len(missing), BATCH):
                batch = missing[start:start + BATCH]
                out = model.predict_structure([structures[i] for i in batch], task="e", return_crystal_feas=True,
                                              batch_size=BATCH)
                for i, result in zip(batch, out if isinstance(out, list) else [out]):
                    np.save(folder / f"{keys[i]}.npy", np.asarray(result["crystal_fea"], dtype=np.float64))
                bar.advance(task, len(batch))
    return np.vstack([np.load(folder / f"{k}.npy") for k in keys]) if keys else np.zeros((0, FEATURES))
