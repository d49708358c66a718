"""Units a measurement may be entered in: a small explicit table, converted to the campaign's unit.

Each unit belongs to one dimension and has a factor to that dimension's reference unit
(value_in_reference = value · factor). Converting between dimensions is refused.
"""

from __future__ import annotations

UNITS: dict[str, tuple[str, float]] = {
    # energy (band gaps)
    "eV": ("energy", 1.0),
    "meV": ("energy", 1e-3),
    # energy per atom (formation energies)
    "eV/atom": ("energy_per_atom", 1.0),
    "meV/atom": ("energy_per_atom", 1e-3),
    # specific heat capacity
    "J/(kg K)": ("specific_heat", 1.0),
    "J/(g K)": ("specific_heat", 1e3),
    "kJ/(kg K)": ("specific_heat", 1e3),
    # density
    "g/cm3": ("density", 1.0),
    "kg/m3": ("density", 1e-3),
    # thermal conductivity
    "W/(m K)": ("thermal_conductivity", 1.0),
    "mW/(m K)": ("thermal_conductivity", 1e-3),
    # moduli
    "GPa": ("pressure", 1e9),
    "MPa": ("pressure", 1e6),
    "Pa": ("pressure", 1.0),
    # length
    "nm": ("length", 1e-9),
    "Å": ("length", 1e-10),
    # inverse quantities and pure numbers
    "1/Pa": ("inverse_pressure", 1.0),
    "1/GPa": ("inverse_pressure", 1e-9),
    "1/K": ("inverse_temperature", 1.0),
    "m2/s": ("diffusivity", 1.0),
    "mm2/s": ("diffusivity", 1e-6),
    "ln(GPa)": ("log_pressure", 1.0),
    "": ("dimensionless", 1.0),
}


class UnitError(ValueError):
    """A unit that is unknown or of another dimension than the campaign's."""


def dimension(unit: str) -> str:
    if unit not in UNITS:
        raise UnitError(unknown_unit(unit))
    return UNITS[unit][0]


def units_of(dimension_name: str) -> list[str]:
    return [u for u, (d, _) in UNITS.items() if d == dimension_name]


def unknown_unit(unit: str, campaign_unit: str | None = None) -> str:
    """Why ``unit`` is refused, and what to write instead: the same letters in another case, and the known units
    of the campaign's dimension (of every dimension when the campaign is not known)."""
    same = [u for u in UNITS if u.lower() == unit.strip().lower() and u != unit]
    hint = f" (did you mean {same[0]!r}?)" if same else ""
    if campaign_unit in UNITS:
        known = units_of(UNITS[campaign_unit][0])
        return f"unknown unit {unit!r}{hint}; this campaign's {UNITS[campaign_unit][0]} units are {', '.join(repr(u) for u in known)}"
    return f"unknown unit {unit!r}{hint}; known units: {', '.join(repr(u) for u in UNITS)}"


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit``; ``UnitError`` across dimensions."""
    if dimension(from_unit) != dimension(to_unit):
        raise UnitError(f"cannot convert {from_unit!r} ({dimension(from_unit)}) to {to_unit!r} ({dimension(to_unit)})")
    return value * UNITS[from_unit][1] / UNITS[to_unit][1]
