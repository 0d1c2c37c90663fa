"""The one periodic table of stoichnet: element symbols H (Z=1) to Og (Z=118).

Every module that needs to know what an element is imports it from here.
"""

SYMBOLS: tuple[str, ...] = (
    "H", "He",
    "Li", "Be", "B", "C", "N", "O", "F", "Ne",
    "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar",
    "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn",
    "Ga", "Ge", "As", "Se", "Br", "Kr",
    "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd",
    "In", "Sn", "Sb", "Te", "I", "Xe",
    "Cs", "Ba",
    "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu",
    "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn",
    "Fr", "Ra",
    "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr",
    "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og",
)  # fmt: skip
"""Element symbols in order of atomic number: ``SYMBOLS[Z - 1]`` is element Z."""

ATOMIC_NUMBERS: dict[str, int] = {symbol: z for z, symbol in enumerate(SYMBOLS, start=1)}
"""Symbol -> atomic number Z (1..118). Case-sensitive: ``"Fe"`` is iron, ``"FE"`` is not."""


def atomic_number(symbol: str) -> int:
    """Atomic number of an element symbol (case-sensitive, e.g. ``"Fe"`` -> 26).

    Raises ValueError for anything that is not one of the 118 symbols H..Og.
    """
    try:
        return ATOMIC_NUMBERS[symbol]
    except KeyError:
        raise ValueError(
            f"unknown element symbol {symbol!r}: expected one of the 118 symbols H..Og"
        ) from None
