"""SNOMED CT identifier checks: catch a mistyped code before it reaches a file.

A SNOMED CT identifier (SCTID) has 6 to 18 digits, no leading zero; its last digit
is a Verhoeff check digit, and the two digits before that are the partition
identifier (``00`` for a concept of the international release, ``10`` for a
concept of an extension). A single wrong or two swapped neighbouring digits always
break the check digit.

Examples
--------
>>> is_valid_sctid("10200004")  # Liver
True
>>> is_valid_sctid("10200040")  # two digits swapped
False
"""

from __future__ import annotations

__all__ = ["is_valid_sctid"]

# Verhoeff's scheme: multiplication in the dihedral group D5 and a position permutation.
_D5 = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_STEP = (1, 5, 7, 6, 2, 8, 3, 0, 9, 4)


def _permutations() -> tuple[tuple[int, ...], ...]:
    rows = [tuple(range(10))]
    for _ in range(7):
        rows.append(tuple(_STEP[v] for v in rows[-1]))
    return tuple(rows)


_PERMUTE = _permutations()


def _verhoeff_ok(digits: str) -> bool:
    check = 0
    for position, digit in enumerate(reversed(digits)):
        check = _D5[check][_PERMUTE[position % 8][int(digit)]]
    return check == 0


def is_valid_sctid(value: str, *, concept: bool = True) -> bool:
    """Tell whether ``value`` is a well-formed SNOMED CT identifier.

    Parameters
    ----------
    value
        The Code Value.
    concept
        Also require a concept partition (``00`` or ``10``), as Segmented Property
        codes must be concepts, not descriptions or relationships.

    Examples
    --------
    >>> is_valid_sctid("7771000"), is_valid_sctid("7771001")
    (True, False)
    """
    if not (value.isascii() and value.isdigit() and 6 <= len(value) <= 18):
        return False
    if value.startswith("0") or not _verhoeff_ok(value):
        return False
    return not concept or value[-3:-1] in ("00", "10")
