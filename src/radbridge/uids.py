"""UID generation: random and deterministic, both under the ``2.25`` root.

UIDs under ``2.25.`` are derived from 128-bit numbers (ISO/IEC 9834-8, PS3.5
Annex B.2), so radbridge needs no registered organisation root. Deterministic
UIDs (:func:`derived_uid`) let a pipeline re-create the *same* UID for the same
result, so a PACS that receives a re-sent object sees a duplicate, never a
conflicting copy.

Examples
--------
>>> from radbridge.uids import derived_uid, is_valid_uid, new_uid
>>> a = derived_uid("study-1", "seg", "v1")
>>> a == derived_uid("study-1", "seg", "v1")
True
>>> a.startswith("2.25.") and is_valid_uid(a)
True
>>> new_uid() != new_uid()
True
"""

from __future__ import annotations

import hashlib
import re
import uuid

__all__ = ["UID_ROOT", "derived_uid", "is_valid_uid", "new_uid"]

UID_ROOT = "2.25."
_UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def new_uid() -> str:
    """Return a new random UID (``2.25.`` + a version-4 UUID as an integer)."""
    return f"{UID_ROOT}{uuid.uuid4().int}"


def derived_uid(*parts: str) -> str:
    """Return a UID that depends only on ``parts``.

    Parameters
    ----------
    *parts
        Strings that identify the object, e.g. a source series UID, a result
        kind and a version. The same parts always give the same UID.

    Returns
    -------
    str
        A UID of at most 44 characters under the ``2.25.`` root.
    """
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    number = int.from_bytes(digest[:16], "big")
    # Mark it as an RFC 4122 version-5-like name-based UUID so it is a valid UUID integer.
    number = (number & ~(0xF << 76)) | (0x5 << 76)
    number = (number & ~(0x3 << 62)) | (0x2 << 62)
    return f"{UID_ROOT}{number}"


def is_valid_uid(value: str) -> bool:
    """Tell whether ``value`` is a syntactically valid UID (PS3.5 section 9.1).

    Examples
    --------
    >>> is_valid_uid("1.2.840.10008.1.2.1")
    True
    >>> is_valid_uid("1.02.3") or is_valid_uid("../etc") or is_valid_uid("1" * 65)
    False
    """
    return 0 < len(value) <= 64 and _UID_RE.match(value) is not None
