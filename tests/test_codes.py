"""The curated anatomy table: complete for TotalSegmentator, well-formed, findable."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from radbridge.codes import lookup, names
from radbridge.color import dicom_lab_to_rgb, rgb_to_dicom_lab, rgb_to_lab
from radbridge.errors import InvalidAttributeError
from radbridge.io.phantom import LABEL_NAMES

#: The 117 classes of TotalSegmentator's "total" task (totalsegmentator/map_to_binary.py).
TOTAL = (
    [
        "spleen",
        "kidney_right",
        "kidney_left",
        "gallbladder",
        "liver",
        "stomach",
        "pancreas",
        "adrenal_gland_right",
        "adrenal_gland_left",
        "lung_upper_lobe_left",
        "lung_lower_lobe_left",
        "lung_upper_lobe_right",
        "lung_middle_lobe_right",
        "lung_lower_lobe_right",
        "esophagus",
        "trachea",
        "thyroid_gland",
        "small_bowel",
        "duodenum",
        "colon",
        "urinary_bladder",
        "prostate",
        "kidney_cyst_left",
        "kidney_cyst_right",
        "sacrum",
        "vertebrae_S1",
        "vertebrae_L5",
        "vertebrae_L4",
        "vertebrae_L3",
        "vertebrae_L2",
        "vertebrae_L1",
        "vertebrae_T12",
        "vertebrae_T11",
        "vertebrae_T10",
        "vertebrae_T9",
        "vertebrae_T8",
        "vertebrae_T7",
        "vertebrae_T6",
        "vertebrae_T5",
        "vertebrae_T4",
        "vertebrae_T3",
        "vertebrae_T2",
        "vertebrae_T1",
        "vertebrae_C7",
        "vertebrae_C6",
        "vertebrae_C5",
        "vertebrae_C4",
        "vertebrae_C3",
        "vertebrae_C2",
        "vertebrae_C1",
        "heart",
        "aorta",
        "pulmonary_vein",
        "brachiocephalic_trunk",
        "subclavian_artery_right",
        "subclavian_artery_left",
        "common_carotid_artery_right",
        "common_carotid_artery_left",
        "brachiocephalic_vein_left",
        "brachiocephalic_vein_right",
        "atrial_appendage_left",
        "superior_vena_cava",
        "inferior_vena_cava",
        "portal_vein_and_splenic_vein",
        "iliac_artery_left",
        "iliac_artery_right",
        "iliac_vena_left",
        "iliac_vena_right",
        "humerus_left",
        "humerus_right",
        "scapula_left",
        "scapula_right",
        "clavicula_left",
        "clavicula_right",
        "femur_left",
        "femur_right",
        "hip_left",
        "hip_right",
        "spinal_cord",
        "gluteus_maximus_left",
        "gluteus_maximus_right",
        "gluteus_medius_left",
        "gluteus_medius_right",
        "gluteus_minimus_left",
        "gluteus_minimus_right",
        "autochthon_left",
        "autochthon_right",
        "iliopsoas_left",
        "iliopsoas_right",
        "brain",
        "skull",
    ]
    + [f"rib_left_{i}" for i in range(1, 13)]
    + [f"rib_right_{i}" for i in range(1, 13)]
    + [
        "sternum",
        "costal_cartilages",
    ]
)


def test_totalsegmentator_classes_all_present():
    assert len(TOTAL) == len(set(TOTAL)) == 117
    missing = sorted(set(TOTAL) - set(names()))
    assert missing == []


def test_radbridge_names_present():
    for name in [*LABEL_NAMES.values(), "lung", "nodule", "lesion", "tumor"]:
        assert lookup(name).name == name


@pytest.mark.parametrize("name", names())
def test_every_row_is_well_formed(name):
    term = lookup(name)
    for code in (
        term.category,
        term.property_type,
        term.type_modifier,
        term.anatomic_region,
        term.anatomic_region_modifier,
    ):
        if code is None:
            continue
        assert code.scheme == "SCT" and code.value.isdigit() and code.meaning
    assert term.category.value in {"123037004", "49755003", "85756007", "260787004"}
    if term.type_modifier is not None:
        assert term.type_modifier.value in {"7771000", "24028007"}
    assert term.source and all(0 <= v <= 255 for v in term.rgb)


def test_laterality_pairs_differ_only_by_their_modifier():
    left_code, right_code = lookup("lung_left").type_modifier, lookup("lung_right").type_modifier
    pairs = 0
    for name in names():
        if not (name.endswith("_left") and name.replace("_left", "_right") in names()):
            continue
        left, right = lookup(name), lookup(name.replace("_left", "_right"))
        if left.type_modifier is None:
            # pre-coordinated ("Left atrium"), or laterality on the region (kidney cysts)
            sides = (left.anatomic_region_modifier, right.anatomic_region_modifier)
            assert left.property_type != right.property_type or sides == (
                left_code,
                right_code,
            ), name
            continue
        pairs += 1
        assert left.property_type == right.property_type, name
        assert (left.type_modifier, right.type_modifier) == (left_code, right_code), name
    assert pairs >= 20


def test_gluteus_minimus_uses_its_own_code():
    # TotalSegmentator's aggregate row gives the medius code; the per-side rows are right.
    assert lookup("gluteus_minimus_left").property_type.value == "75297007"
    assert (
        lookup("gluteus_minimus_left").property_type != lookup("gluteus_medius_left").property_type
    )


def test_aliases_and_spelling():
    assert lookup("Left Lung").name == "lung_left"
    assert lookup("vertebrae l1").name == "vertebrae_L1"
    assert lookup("Right Kidney").name == "kidney_right"
    assert lookup("tumour").name == "tumor"


def test_unknown_name_suggests_close_ones():
    with pytest.raises(InvalidAttributeError) as err:
        lookup("livr")
    assert "liver" in str(err.value) and "codes explicitly" in str(err.value)


def test_cielab_reference_values():
    assert rgb_to_dicom_lab((255, 255, 255)) == (65535, 32896, 32896)
    assert rgb_to_dicom_lab((0, 0, 0)) == (0, 32896, 32896)
    lightness, a, b = rgb_to_lab((255, 0, 0))  # sRGB red: L* 53.24, a* 80.09, b* 67.20
    assert (round(lightness, 1), round(a, 1), round(b, 1)) == (53.2, 80.1, 67.2)


@given(st.tuples(*(st.integers(0, 255) for _ in range(3))))
def test_cielab_round_trip(rgb):
    back = dicom_lab_to_rgb(rgb_to_dicom_lab(rgb))
    assert np.abs(np.subtract(back, rgb)).max() <= 1
