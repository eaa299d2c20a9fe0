"""The one UCUM check: every unit radbridge writes (SR measurements, Parametric Maps, batch rows).

A Measurement Units Code Sequence holds a UCUM code (PS3.3 C.7.6.16.2.11 for a
Real World Value Mapping, TID 300 for SR measurements; CID 7181 lists common
ones). A full UCUM
implementation is large; this module accepts the expressions imaging uses:
units of CID 7181 and CID 82 (as pydicom ships them), and any expression built
from UCUM base and derived atoms with SI prefixes, exponents, ``.`` and ``/``,
parentheses, integer factors and ``{annotations}`` (``{probability}``,
``g/ml{SUVbw}``, ``mm2/s``, ``10*-3.mm2/s``). An atom with a bracketed part is one
token with its prefix (``cm[H2O]``, ``mm[Hg]``, ``m[iU]``).

Examples
--------
>>> parse_units("{probability}").value
'{probability}'
>>> parse_units("mm2/s").meaning
'mm2/s'
>>> parse_units("furlongs")
Traceback (most recent call last):
...
radbridge.errors.EncodingError: 'furlongs' is not a UCUM unit [MeasurementUnitsCodeSequence]. ...
"""

from __future__ import annotations

import re
from functools import cache

from radbridge.coding import Code, ucum
from radbridge.errors import EncodingError

__all__ = ["is_ucum", "parse_units"]

#: UCUM atoms that take SI prefixes (metric units).
_METRIC = frozenset(
    [
        "m",
        "g",
        "s",
        "A",
        "K",
        "mol",
        "cd",
        "rad",
        "sr",
        "Hz",
        "N",
        "Pa",
        "J",
        "W",
        "C",
        "V",
        "F",
        "Ohm",
        "S",
        "Wb",
        "T",
        "H",
        "Cel",
        "lm",
        "lx",
        "Bq",
        "Gy",
        "Sv",
        "l",
        "L",
        "eq",
        "osm",
        "U",
        "[iU]",
        "[IU]",
        "bar",
        "t",
        "u",
        "eV",
        "B",
        "dB",
        "Np",
        "m[H2O]",  # meter of water column (UCUM: metric, so cm[H2O], mm[H2O])
        "m[Hg]",  # meter of mercury column (mm[Hg], cm[Hg])
    ]
)
#: UCUM atoms that take no prefix.
_PLAIN = frozenset(
    [
        "min",
        "h",
        "d",
        "wk",
        "mo",
        "a",
        "deg",
        "'",
        "''",
        "%",
        "[ppm]",
        "[ppb]",
        "[ppth]",
        "[pptr]",
        "[pi]",
        "[hnsf'U]",
        "[arb'U]",
        "[PRU]",
        "[pH]",
        "[in_i'H2O]",
        "[in_i'Hg]",
        "ppm",
        "10*",
        "[lb_av]",
        "[in_i]",
        "[ft_i]",
        "[degF]",
        "gon",
        "ar",
        "L",
    ]
)
_PREFIXES = ("da", "Y", "Z", "E", "P", "T", "G", "M", "k", "h", "d", "c", "m", "u", "n", "p", "f")
_ANNOTATION = r"\{[^{}]*\}"
#: An atom with a bracketed part is one token, with its prefix and exponent: "[iU]",
#: "m[iU]", "cm[H2O]", "[in_i'Hg]", "[ft_i]2".
_BRACKETED = r"[^()./\[{]*\[[^\]]*\][+-]?\d*"
_TOKEN = re.compile(rf"{_ANNOTATION}|{_BRACKETED}|[()./]|[^()./\[{{]+")
_SIMPLE = re.compile(r"(?P<atom>.*?)(?P<exponent>[+-]?\d+)?", re.S)


@cache
def _known_codes() -> frozenset[str]:
    """UCUM code values pydicom ships: its UCUM concepts and CIDs 7181, 82 and 85."""
    from pydicom.sr.codedict import codes

    found: set[str] = set()
    for name in ("UCUM", "cid7181", "cid82", "cid85"):
        group = getattr(codes, name, None)
        if group is None:  # pragma: no cover - depends on the pydicom version
            continue
        for key in group.dir():
            code = getattr(group, key)
            if code.scheme_designator == "UCUM":
                found.add(str(code.value))
    return frozenset(found)


def _is_atom(text: str) -> bool:
    if text in _METRIC or text in _PLAIN:
        return True
    return any(text.startswith(prefix) and text[len(prefix) :] in _METRIC for prefix in _PREFIXES)


def _is_component(text: str) -> bool:
    """Tell whether ``text`` is an atom with an exponent, or a factor (``10*3``, ``100``)."""
    if text.isdigit():
        return True
    if text.startswith("10*") and re.fullmatch(r"10\*[+-]?\d+", text):
        return True
    if text.startswith("10^") and re.fullmatch(r"10\^[+-]?\d+", text):
        return True
    match = _SIMPLE.fullmatch(text)
    assert match is not None  # the pattern matches every string, line breaks too
    atom = match.group("atom")
    return bool(atom) and _is_atom(atom)


def is_ucum(expression: str) -> bool:
    """Tell whether ``expression`` is a UCUM unit radbridge recognises.

    Examples
    --------
    >>> is_ucum("ml/[100]g/min"), is_ucum("g/ml{SUVbw}"), is_ucum("probability")
    (True, True, False)
    >>> is_ucum("{SUVbw}g/ml"), is_ucum("milliliters")
    (True, False)
    """
    if not expression or expression != expression.strip() or " " in expression:
        return False
    if expression in _known_codes():
        return True
    leading = re.match(rf"^{_ANNOTATION}(?=[^./)])", expression)
    if leading:  # "{SUVbw}g/ml": the form of earlier CID 85, still in dcmqi's reports
        return is_ucum(expression[leading.end() :])
    tokens = _TOKEN.findall(expression)
    return "".join(tokens) == expression and _well_formed(tokens)


def _well_formed(tokens: list[str]) -> bool:
    """Tell whether the tokens alternate terms and operators, with balanced brackets."""
    depth = 0
    expect_term = True  # at the start, after "." or "/" or "("
    for position, token in enumerate(tokens):
        if token in ("(", ")"):
            depth += 1 if token == "(" else -1
            if (token == "(") != expect_term or depth < 0:
                return False
        elif token in (".", "/"):
            if expect_term and not (token == "/" and position == 0):
                return False
            expect_term = True
            continue
        elif not _is_term(token, expect_term):
            return False
        expect_term = token == "("
    return depth == 0 and not expect_term


def _is_term(token: str, expect_term: bool) -> bool:
    if token.startswith("{"):
        return True  # an annotation: alone it means 1, after a unit it qualifies it
    if not expect_term:
        return False
    if token.startswith("["):
        return _is_component(token) or _is_atom(token)
    return _is_component(token)


def parse_units(units: Code | str) -> Code:
    """Return ``units`` as a UCUM :class:`~radbridge.coding.Code`, or raise.

    Parameters
    ----------
    units
        A UCUM code (scheme ``UCUM``) or a UCUM expression such as ``"mm2/s"``
        or ``"{probability}"``.

    Raises
    ------
    EncodingError
        The scheme is not UCUM, or the expression is not a UCUM unit.
    """
    code = ucum(units) if isinstance(units, str) else units
    if code.scheme != "UCUM":
        raise EncodingError(
            f"units {code} are not coded in UCUM",
            attribute="MeasurementUnitsCodeSequence",
            hint="give a UCUM code, e.g. ucum('mm2/s'), or '1' / '{probability}' for "
            "unitless values",
        )
    if not is_ucum(code.value):
        raise EncodingError(
            f"{code.value!r} is not a UCUM unit",
            attribute="MeasurementUnitsCodeSequence",
            hint="write the unit in UCUM syntax (e.g. 'mm2/s', 'ms', 'g/ml{SUVbw}'); "
            "use '1' or an annotation such as '{probability}' for unitless values",
        )
    return code
