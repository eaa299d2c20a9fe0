"""The damage check remembers elements that passed: repeated bytes decode the same way.

A series' headers repeat most elements byte for byte, so ``check_elements`` decodes
each distinct (tag, VR, value, character set, pydicom reading options) once; these
tests make sure damage is still found in every file that holds it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import config
from pydicom.dataelem import RawDataElement

from radbridge.errors import InvalidAttributeError
from radbridge.io.scan import read_header
from radbridge.iods.multiframe.fast_read import check_elements

from .builders import ct_slice

#: Instance Number "77" as written (explicit VR little endian): the place to patch.
_INSTANCE_NUMBER = b"\x20\x00\x13\x00IS\x02\x0077"


def _write(folder: Path, name: str, instance_number: bytes = b"77", vr: bytes = b"IS") -> Path:
    """A CT header whose Instance Number holds ``instance_number`` under ``vr``."""
    ds = ct_slice((0, 0, 0))
    ds.SOPInstanceUID = "1.2.3.9"  # the same bytes in every file
    ds.InstanceNumber = 77
    path = folder / name
    ds.save_as(path, enforce_file_format=True, implicit_vr=False, little_endian=True)
    data = path.read_bytes()
    assert data.count(_INSTANCE_NUMBER) == 1
    value = instance_number + b" " * (len(instance_number) % 2)
    element = b"\x20\x00\x13\x00" + vr + len(value).to_bytes(2, "little") + value
    path.write_bytes(data.replace(_INSTANCE_NUMBER, element))
    return path


def _check(path: Path) -> None:
    check_elements(read_header(path), name=path)


def test_damage_is_found_after_the_same_element_passed_with_another_value(tmp_path):
    good = [_write(tmp_path, f"good{i}.dcm", b"", vr=b"LO") for i in range(3)]
    for path in good:
        _check(path)  # an empty value is no number, but no text either
    damaged = _write(tmp_path, "damaged.dcm", b"12", vr=b"LO")  # a number stored as text
    with pytest.raises(InvalidAttributeError, match="InstanceNumber") as error:
        _check(damaged)
    assert str(damaged) in str(error.value)
    _check(good[0])


def test_repeated_elements_are_decoded_once(tmp_path):
    first, second = _write(tmp_path, "a.dcm"), _write(tmp_path, "b.dcm")
    _check(first)
    header = read_header(second)
    check_elements(header, name=second)
    assert isinstance(header.get_item(0x00100020), RawDataElement)  # Patient ID: seen before
    assert header.InstanceNumber == 77


def test_pydicom_reading_options_are_part_of_what_passed(tmp_path):
    """A value pydicom accepts with a warning is refused when strict reading is asked."""
    path = _write(tmp_path, "a.dcm", b"1.5")
    with pytest.warns(UserWarning):
        _check(path)
    with config.strict_reading(), pytest.raises(InvalidAttributeError, match="InstanceNumber"):
        _check(path)


def test_numpy_decoding_of_ds_is_part_of_what_passed(tmp_path, monkeypatch):
    """'nan' in a DS passes as a DSfloat but is no NumPy number: checked again then."""
    path = _write(tmp_path, "a.dcm", b"nan", vr=b"DS")
    _check(path)
    monkeypatch.setattr(config, "use_DS_numpy", True)
    with pytest.raises(InvalidAttributeError, match="InstanceNumber"):
        _check(path)


def _with_items(
    folder: Path, name: str, values: list[bytes], vr: bytes = b"IS", charset_in: int | None = None
) -> Path:
    """A CT header with a Referenced Image Sequence whose items hold ``values`` as Instance Number.

    Each item also holds the same Referenced SOP Class UID (repeated bytes); item
    ``charset_in`` has a Specific Character Set of its own.
    """
    from pydicom.dataset import Dataset

    ds = ct_slice((0, 0, 0))
    items = []
    for i in range(len(values)):
        item = Dataset()
        item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        item.InstanceNumber = 900 + i  # patched below
        if i == charset_in:
            item.SpecificCharacterSet = "ISO_IR 192"
        items.append(item)
    ds.ReferencedImageSequence = items
    path = folder / name
    ds.save_as(path, enforce_file_format=True, implicit_vr=False, little_endian=True)
    data = path.read_bytes()
    for i, value in enumerate(values):
        old = b"\x20\x00\x13\x00IS\x04\x00" + str(900 + i).encode() + b" "
        assert data.count(old) == 1
        padded = value.ljust(4)  # four bytes, as "900 ": the sequence's lengths stay right
        new = b"\x20\x00\x13\x00" + vr + len(padded).to_bytes(2, "little") + padded
        assert len(new) == len(old)  # the sequence's lengths stay right
        data = data.replace(old, new)
    path.write_bytes(data)
    return path


def test_repeated_nested_elements_are_decoded_once(tmp_path, monkeypatch):
    from radbridge.iods.multiframe import fast_read

    monkeypatch.setattr(fast_read, "_PASSED", {})  # nothing passed before in this process
    path = _with_items(tmp_path, "a.dcm", [b"11", b"12", b"13"])
    header = read_header(path)
    check_elements(header, name=path)
    first, *others = header.ReferencedImageSequence
    assert not isinstance(first.get_item(0x00081150), RawDataElement)  # decoded: the first
    for item in others:  # the same bytes in the next items: known to pass
        assert isinstance(item.get_item(0x00081150), RawDataElement)
        assert item.ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert [int(item.InstanceNumber) for item in header.ReferencedImageSequence] == [11, 12, 13]


def test_nested_damage_is_found_after_the_same_element_passed(tmp_path):
    _check(_with_items(tmp_path, "good.dcm", [b"11", b"12"], vr=b"IS"))
    damaged = _with_items(tmp_path, "bad.dcm", [b"11", b"12"], vr=b"LO")  # numbers as text
    with pytest.raises(InvalidAttributeError, match="InstanceNumber") as error:
        _check(damaged)
    assert str(damaged) in str(error.value)


def test_what_a_reader_skipped_is_checked_for_the_next_reader(tmp_path):
    """A sequence that passed with a nested tag skipped has not passed without the skip."""
    damaged = _with_items(tmp_path, "bad.dcm", [b"12"], vr=b"LO")
    check_elements(read_header(damaged), name=damaged, skip={0x00200013})  # not looked at
    with pytest.raises(InvalidAttributeError, match="InstanceNumber"):
        check_elements(read_header(damaged), name=damaged)


def test_an_items_own_character_set_is_part_of_what_passed(tmp_path, monkeypatch):
    from radbridge.iods.multiframe import fast_read

    monkeypatch.setattr(fast_read, "_PASSED", {})  # nothing passed before in this process
    _check(_with_items(tmp_path, "parent.dcm", [b"11", b"12"]))  # both items: the default
    path = _with_items(tmp_path, "own.dcm", [b"11", b"12"], charset_in=1)
    header = read_header(path)
    check_elements(header, name=path)
    first, second = header.ReferencedImageSequence
    assert isinstance(first.get_item(0x00081150), RawDataElement)  # same bytes, same charset
    assert not isinstance(second.get_item(0x00081150), RawDataElement)  # decoded again
