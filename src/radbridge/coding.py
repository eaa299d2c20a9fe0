"""Coded concepts (PS3.3 section 8.8): the ``Code`` value type and common codes.

A :class:`Code` is the triple (value, scheme designator, meaning) that DICOM
uses wherever a concept is coded: segmented property types, anatomic regions,
SR concept names, units. Curated tables live in :mod:`radbridge.codes`.

Examples
--------
>>> from radbridge.coding import Code
>>> liver = Code("10200004", "SCT", "Liver")
>>> liver.to_dataset().CodeValue
'10200004'
>>> Code.from_dataset(liver.to_dataset()) == liver
True
>>> liver == Code("10200004", "SCT", "liver (body structure)")  # meaning is not identity
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from radbridge.errors import ConfigError, InvalidAttributeError, MissingAttributeError

__all__ = ["Code", "dcm", "sct", "ucum"]


@dataclass(frozen=True)
class Code:
    """A coded concept.

    Two codes are equal when value and scheme are equal (and the scheme version,
    when both give one); the meaning is a human-readable label only.

    Parameters
    ----------
    value
        Code Value (or Long Code Value / URN Code Value when longer than 16 characters).
    scheme
        Coding Scheme Designator, e.g. ``"SCT"``, ``"DCM"``, ``"UCUM"``.
    meaning
        Code Meaning.
    scheme_version
        Coding Scheme Version, when the scheme needs one.
    """

    value: str
    scheme: str
    meaning: str = field(compare=False)
    scheme_version: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.value or not self.scheme:
            raise InvalidAttributeError(
                f"a code needs a value and a scheme, got {self.value!r} / {self.scheme!r}",
                attribute="CodeValue",
            )
        if any("\\" in part for part in (self.value, self.scheme, self.meaning or "")):
            raise InvalidAttributeError(
                f"code {self.value!r} contains a backslash, which DICOM uses between values",
                attribute="CodeMeaning",
                hint="remove the backslash from the code value, scheme and meaning",
            )

    def __str__(self) -> str:
        return f"({self.value}, {self.scheme}, {self.meaning!r})"

    def to_dataset(self) -> Dataset:
        """Return a code sequence item (Basic Coded Entry Attributes)."""
        ds = Dataset()
        if self.value.startswith(("urn:", "http:", "https:")):
            ds.URNCodeValue = self.value
        elif len(self.value) > 16:
            ds.LongCodeValue = self.value
        else:
            ds.CodeValue = self.value
        ds.CodingSchemeDesignator = self.scheme
        if self.scheme_version:
            ds.CodingSchemeVersion = self.scheme_version
        ds.CodeMeaning = self.meaning[:64]
        return ds

    @classmethod
    def from_dataset(cls, ds: Dataset, *, source: str | None = None) -> Code:
        """Read a code sequence item, accepting Code Value, Long Code Value or URN Code Value.

        Parameters
        ----------
        ds
            The item.
        source
            File name for messages.
        """
        value = ds.get("CodeValue") or ds.get("LongCodeValue") or ds.get("URNCodeValue")
        scheme = ds.get("CodingSchemeDesignator")
        if not value:
            raise MissingAttributeError(
                "coded entry has no code value", path=source, attribute="CodeValue"
            )
        if not scheme:
            raise MissingAttributeError(
                f"coded entry {value!r} has no coding scheme",
                path=source,
                attribute="CodingSchemeDesignator",
            )
        version = ds.get("CodingSchemeVersion")
        return cls(
            str(value),
            str(scheme),
            str(ds.get("CodeMeaning", "") or ""),
            str(version) if version else None,
        )

    def to_json(self) -> dict[str, str]:
        """Return ``{"value", "scheme", "meaning"[, "scheme_version"]}``."""
        out = {"value": self.value, "scheme": self.scheme, "meaning": self.meaning}
        if self.scheme_version:
            out["scheme_version"] = self.scheme_version
        return out

    @classmethod
    def parse(cls, text: str, *, attribute: str = "code") -> Code:
        """Read the command line's ``SCHEME:VALUE:MEANING`` form.

        Examples
        --------
        >>> Code.parse("DCM:113041:Apparent Diffusion Coefficient").value
        '113041'

        Raises
        ------
        ConfigError
            Not three non-empty parts (the message names ``attribute``).
        """
        parts = str(text).split(":", 2)
        if len(parts) != 3 or not all(p.strip() for p in parts):
            raise ConfigError(
                f"cannot read the code {text!r}",
                attribute=attribute,
                hint="write SCHEME:VALUE:MEANING, e.g. 'DCM:113041:Apparent Diffusion Coefficient'",
            )
        scheme, value, meaning = (p.strip() for p in parts)
        return cls(value, scheme, meaning)

    @classmethod
    def from_json(cls, data: dict[str, str]) -> Code:
        """Inverse of :meth:`to_json`."""
        try:
            return cls(
                str(data["value"]),
                str(data["scheme"]),
                str(data.get("meaning", "")),
                data.get("scheme_version"),
            )
        except KeyError as exc:
            raise InvalidAttributeError(
                f"a JSON code needs 'value' and 'scheme', got keys {sorted(data)}",
                attribute=str(exc.args[0]),
            ) from exc


def dcm(value: str, meaning: str) -> Code:
    """Return a DICOM Controlled Terminology (``DCM``) code."""
    return Code(value, "DCM", meaning)


def sct(value: str, meaning: str) -> Code:
    """Return a SNOMED CT (``SCT``) code."""
    return Code(value, "SCT", meaning)


def ucum(value: str, meaning: str | None = None) -> Code:
    """Return a UCUM unit code; the meaning defaults to the unit itself."""
    return Code(value, "UCUM", meaning or value)
