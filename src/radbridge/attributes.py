"""Read single values from data sets safely: damaged files name the attribute, never crash.

A damaged length can turn one value into several, a wrong VR a number into text
or a sequence into bytes. These accessors return what readers need or raise an
:class:`~radbridge.errors.InvalidAttributeError` that names the attribute.
"""

from __future__ import annotations

from typing import overload

from pydicom.dataset import Dataset

from radbridge.errors import InvalidAttributeError

__all__ = [
    "damaged",
    "first_item",
    "floats_value",
    "int_value",
    "number_or_none",
    "text_value",
]


def int_value(
    ds: Dataset, keyword: str, default: int | None = None, *, source: object = None
) -> int:
    """Return a single-valued integer attribute, or raise naming it.

    An absent or empty value gives ``default``; several values (a damaged length
    can turn one into many) or a value that is not a whole number are refused.

    Raises
    ------
    MissingAttributeError
        The attribute is absent and there is no default.
    InvalidAttributeError
        It holds several values or something that is not an integer.

    Examples
    --------
    >>> from pydicom import Dataset
    >>> ds = Dataset()
    >>> ds.Rows = 512
    >>> int_value(ds, "Rows"), int_value(ds, "Columns", 0)
    (512, 0)
    """
    from pydicom.multival import MultiValue

    from radbridge.errors import MissingAttributeError

    value = ds.get(keyword)
    if isinstance(value, list | tuple | MultiValue) and len(value) == 1:
        value = value[0]
    if value is None or value == "" or (isinstance(value, list | tuple | MultiValue) and not value):
        if default is None:
            raise MissingAttributeError(
                f"{keyword} is missing", path=str(source) if source else None, attribute=keyword
            )
        return default
    if isinstance(value, list | tuple | MultiValue):
        raise damaged(source, keyword, f"holds {len(value)} values where one is expected")
    try:
        number = float(value)
        if number != int(number):
            raise ValueError(value)
        return int(number)
    except (TypeError, ValueError, OverflowError):
        raise damaged(source, keyword, f"is not an integer ({str(value)[:40]!r})") from None


def floats_value(
    ds: Dataset, keyword: str, count: int, *, source: object = None
) -> list[float] | None:
    """Return ``count`` finite numbers of a multi-valued attribute, ``None`` when absent.

    Raises
    ------
    InvalidAttributeError
        Another number of values, or values that are not finite numbers.

    Examples
    --------
    >>> from pydicom import Dataset
    >>> ds = Dataset()
    >>> ds.PixelSpacing = [0.5, 0.5]
    >>> floats_value(ds, "PixelSpacing", 2), floats_value(ds, "SliceThickness", 1)
    ([0.5, 0.5], None)
    """
    import math

    from pydicom.multival import MultiValue

    value = ds.get(keyword)
    if value is None or value == "":
        return None
    values = list(value) if isinstance(value, list | tuple | MultiValue) else [value]
    if not values:
        return None
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        raise damaged(source, keyword, "holds values that are not numbers") from None
    if len(numbers) != count or not all(math.isfinite(v) for v in numbers):
        raise damaged(source, keyword, f"holds {len(numbers)} values, {count} finite expected")
    return numbers


@overload
def number_or_none(ds: Dataset, keyword: str) -> float | None: ...
@overload
def number_or_none(ds: Dataset, keyword: str, kind: type[int]) -> int | None: ...
@overload
def number_or_none(ds: Dataset, keyword: str, kind: type[float]) -> float | None: ...


def number_or_none(
    ds: Dataset, keyword: str, kind: type[float] | type[int] = float
) -> float | int | None:
    """Return a single number (``kind``), ``None`` when absent, empty or not one finite number.

    For values that only inform (routing facts, what a model is told, expected
    counts): a damaged one is unknown rather than an error, so one bad header never
    stops a series; readers that need the value use :func:`int_value` or
    :func:`floats_value`, which name the damage.

    Examples
    --------
    >>> from pydicom import Dataset
    >>> ds = Dataset()
    >>> ds.SliceThickness, ds.NumberOfFrames = "1.25", "12"
    >>> number_or_none(ds, "SliceThickness"), number_or_none(ds, "NumberOfFrames", int)
    (1.25, 12)
    >>> ds.SliceThickness = None
    >>> number_or_none(ds, "SliceThickness"), number_or_none(ds, "PixelSpacing")
    (None, None)
    """
    import math

    try:
        value = ds.get(keyword)
        if value is None or value == "":
            return None
        number = kind(value)
    except (TypeError, ValueError, OverflowError):  # text, several values, a damaged element
        return None
    return number if math.isfinite(number) else None


def text_value(ds: Dataset, keyword: str) -> str:
    """Return an attribute as text, ``""`` when it is absent or empty.

    Examples
    --------
    >>> from pydicom import Dataset
    >>> ds = Dataset()
    >>> ds.Modality = "CT"
    >>> text_value(ds, "Modality"), text_value(ds, "BodyPartExamined")
    ('CT', '')
    """
    return str(ds.get(keyword, "") or "")


def first_item(ds: Dataset | None, keyword: str, *, source: object = None) -> Dataset | None:
    """Return the first item of a sequence attribute, ``None`` when absent or not a sequence.

    Raises
    ------
    InvalidAttributeError
        The attribute is there but cannot be decoded (a damaged length or VR in an
        item that was parsed only now).

    Examples
    --------
    >>> from pydicom import Dataset
    >>> first_item(Dataset(), "PlanePositionSequence") is None
    True
    """
    from pydicom.sequence import Sequence

    try:
        value = ds.get(keyword) if ds is not None else None
    except Exception as exc:  # pydicom raises many kinds on damaged raw values
        detail = f"cannot be decoded ({type(exc).__name__})"
        raise damaged(source, keyword, detail) from exc
    if isinstance(value, Sequence) and len(value) and isinstance(value[0], Dataset):
        return value[0]
    return None


def damaged(name: object, attribute: str, what: str) -> InvalidAttributeError:
    """Return the error for a damaged value: names the file and attribute, says what to do."""
    return InvalidAttributeError(
        f"{attribute} {what}",
        path=str(name) if name is not None else None,
        attribute=attribute,
        hint="the file is damaged or was written with a wrong VR; ask its sender for a new copy",
    )
