"""Benchmarks: commands that print figures and write a JSON report (``e2t-al bench …``)."""

from __future__ import annotations

import os
import platform
from importlib import metadata

from e2t_al.data import DataError


def seed_range(seeds: int, first_seed: int) -> list[int]:
    """Seeds ``first_seed`` … ``first_seed + seeds − 1`` of a benchmark, checked as the command's options."""
    if seeds < 1:
        raise DataError("--seeds must be at least 1")
    if first_seed < 0:
        raise DataError("--first-seed must be 0 or more")
    return list(range(first_seed, first_seed + seeds))


NUMERIC_PACKAGES = ("torch", "botorch", "gpytorch", "linear_operator", "numpy", "scipy", "pymatgen", "rdkit")


# environment variables that force the numeric libraries onto other CPU kernels than the machine's best
KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR", "OPENBLAS_CORETYPE")


def cpu_kernels() -> dict:
    """Which CPU kernels the numeric libraries run: torch's instruction set (``cpu_capability``: ``AVX512``,
    ``AVX2``, …; MKL dispatches on the same CPU), the core type numpy's OpenBLAS chose (``blas_architecture``, ``None``
    where unknown), and any of ``KERNEL_VARIABLES`` that is set. Other kernels round differently: a GP campaign on a
    target window (hoip-pb-window, seed 3) made 32 in-window hits on an AVX-512 machine and 33 there with MKL and
    OpenBLAS held to AVX2 kernels (31 in an earlier session with the same package versions, its CPU not recorded)."""
    import numpy  # noqa: F401  (loads its OpenBLAS, which threadpoolctl then finds)
    import torch
    from threadpoolctl import threadpool_info

    openblas = [pool for pool in threadpool_info() if pool.get("internal_api") == "openblas"]
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "blas_architecture": openblas[0].get("architecture") if openblas else None,
            **{name: os.environ[name] for name in KERNEL_VARIABLES if name in os.environ}}


def environment() -> dict:
    """What a benchmark's figures depend on besides the code and the data: the Python and numeric packages' versions
    (``None`` for one not installed) and the CPU kernels they run (``cpu_kernels``). A discovery campaign repeated in
    one environment gave the same result, but small numerical differences between package versions or CPUs moved
    single seeds by whole batches, so reports record it."""
    versions = {}
    for package in NUMERIC_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"python": platform.python_version(), **versions, **cpu_kernels()}


def joined_environments(*reports: dict) -> list[dict]:
    """The distinct ``environments`` of reports whose seeds or domains are joined into one, in first-seen order."""
    seen = [env for report in reports for env in report.get("environments", [])]
    return [env for i, env in enumerate(seen) if env not in seen[:i]]
