"""The curated anatomy table: complete for TotalSegmentator, consistent with DICOM, findable.

Facts the table is checked against come from outside radbridge: TotalSegmentator's class
list (below, the specification) and the DICOM PS3.16 context groups as pydicom ships them
(``pydicom.sr``, generated from the standard).
"""

from __future__ import annotations

import csv
import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
from highdicom.color import CIELabColor
from hypothesis import given
from hypothesis import strategies as st
from pydicom.sr._cid_dict import cid_concepts
from pydicom.sr._concepts_dict import concepts
from pydicom.sr.codedict import codes

import radbridge.codes as rc
from radbridge.codes import SOURCES, is_valid_sctid, lookup, names
from radbridge.codes.anatomy import ALIASES
from radbridge.color import dicom_lab_to_rgb, rgb_to_dicom_lab, rgb_to_lab
from radbridge.errors import InvalidAttributeError, UnknownTermError
from radbridge.io.phantom import LABEL_NAMES

ROOT = Path(__file__).resolve().parents[1]

#: The 117 classes of TotalSegmentator's "total" task, label 1..117 in order
#: (class_map["total"] in totalsegmentator/map_to_binary.py, wasserth/TotalSegmentator 0e65a44).
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


def _dicom_sct() -> dict[str, tuple[str, set[int]]]:
    """SCT code value -> (a PS3.16 meaning, every context group that lists it)."""
    out: dict[str, tuple[str, set[int]]] = {}
    for entries in concepts["SCT"].values():
        for value, (meaning, cids) in entries.items():
            previous = out.get(value, (meaning, set()))
            out[value] = (meaning if cids else previous[0], previous[1] | set(cids))
    return out


DICOM_SCT = _dicom_sct()


def _cid_values(cid: int) -> set[str]:
    return {
        value for keyword in cid_concepts[cid].get("SCT", []) for value in concepts["SCT"][keyword]
    }


def _codes(term):
    return [
        term.category,
        term.property_type,
        term.type_modifier,
        term.anatomic_region,
        term.anatomic_region_modifier,
    ]


# -- coverage -----------------------------------------------------------------------------


def test_totalsegmentator_classes_all_present():
    assert len(TOTAL) == len(set(TOTAL)) == 117
    assert sorted(set(TOTAL) - set(names())) == []


def test_radbridge_names_present():
    for name in [*LABEL_NAMES.values(), "lung", "nodule", "lesion", "tumor"]:
        assert lookup(name).name == name


def test_no_duplicate_names_in_the_data_file():
    text = (ROOT / "src" / "radbridge" / "codes" / "anatomy.tsv").read_text("utf-8")
    rows = csv.DictReader(
        [line for line in text.splitlines() if line and not line.startswith("#")],
        delimiter="\t",
    )
    listed = [row["name"] for row in rows]
    assert len(listed) == len(set(listed)) == len(names())
    # names must also stay distinct once case and separators are ignored
    assert len({name.lower().replace("-", "_") for name in listed}) == len(listed)


# -- every row ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", names())
def test_every_row_is_well_formed(name):
    term = lookup(name)
    for code in _codes(term):
        if code is not None:
            assert code.scheme == "SCT" and code.meaning.strip(), code
            assert is_valid_sctid(code.value), code
    assert term.category in rc.CATEGORIES
    for modifier in (term.type_modifier, term.anatomic_region_modifier):
        assert modifier is None or modifier.value in _cid_values(244)
    assert term.anatomic_region_modifier is None or term.anatomic_region is not None
    assert len(term.rgb) == 3 and all(0 <= v <= 255 for v in term.rgb)
    assert term.source and all(key in SOURCES for key in term.source.split("; ")), term.source


@pytest.mark.parametrize("name", names())
def test_category_agrees_with_the_dicom_group_of_the_type(name):
    term = lookup(name)
    groups = DICOM_SCT.get(term.property_type.value, ("", set()))[1]
    if groups & {7192}:
        assert term.category == rc.ANATOMICAL_STRUCTURE
    if groups & {7159, 7194}:
        assert term.category == rc.MORPHOLOGICALLY_ABNORMAL_STRUCTURE
    if groups & {7166, 7191}:
        assert term.category == rc.TISSUE


@pytest.mark.parametrize("name", [n for n in names() if lookup(n).type_modifier is not None])
def test_no_side_built_into_a_type_that_has_a_laterality_modifier(name):
    # SCT 29700009 is "Right subclavian artery": with a Left modifier it says both sides.
    meaning = DICOM_SCT.get(lookup(name).property_type.value, (lookup(name).property_type.meaning,))
    words = set(meaning[0].lower().replace("(", " ").split())
    assert not words & {"left", "right"}, meaning


def test_rows_from_dicom_groups_are_in_those_groups():
    for name in names():
        term = lookup(name)
        for key in term.source.split("; "):
            if key in ("CID 7159", "CID 7166", "CID 7192"):
                assert term.property_type.value in _cid_values(int(key[4:])), name
            if key == "CID 4":
                assert term.anatomic_region.value in _cid_values(4), name
            if key == "CID 244":
                assert term.type_modifier.value in _cid_values(244), name


def test_laterality_pairs_differ_only_by_their_modifier():
    pairs = 0
    for name in names():
        parts = name.split("_")
        other = "_".join("right" if part == "left" else part for part in parts)
        if "left" not in parts or other not in names():
            continue
        left, right = lookup(name), lookup(other)
        if left.type_modifier is None:
            # a side built into the concept ("Left atrium"), or the side on the region
            sides = (left.anatomic_region_modifier, right.anatomic_region_modifier)
            assert left.property_type != right.property_type or sides == (rc.LEFT, rc.RIGHT)
            continue
        pairs += 1
        assert left.property_type == right.property_type, name
        assert (left.type_modifier, right.type_modifier) == (rc.LEFT, rc.RIGHT), name
        assert left.category == right.category and left.rgb == right.rgb, name
    assert pairs >= 32  # 20 organs, bones, muscles and vessels + 12 ribs


def test_findings_do_not_take_the_colour_of_their_organ():
    organs = {
        (t.property_type, t.type_modifier): t.rgb
        for t in map(lookup, names())
        if t.anatomic_region is None
    }
    checked = 0
    for term in map(lookup, names()):
        if term.anatomic_region is not None:
            organ = organs.get((term.anatomic_region, term.anatomic_region_modifier))
            assert organ is None or organ != term.rgb, term.name
            checked += organ is not None
    assert checked >= 3


def test_corrections_to_the_totalsegmentator_table():
    # TotalSegmentator#612: subclavian arteries and gluteus maximus; minimus has its own code.
    assert lookup("subclavian_artery_left").property_type.value == "36765005"
    assert lookup("gluteus_maximus_right").property_type.value == "206007"
    minimus, medius = lookup("gluteus_minimus_left"), lookup("gluteus_medius_left")
    assert minimus.property_type != medius.property_type


# -- lookup -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "name"),
    [
        ("Left Lung", "lung_left"),
        ("  LIVER ", "liver"),
        ("vertebrae l1", "vertebrae_L1"),
        ("Vertebra-L1", "vertebrae_L1"),
        ("Right Kidney", "kidney_right"),
        ("left lung upper lobe", "lung_upper_lobe_left"),
        ("lung upper-lobe left", "lung_upper_lobe_left"),
        ("rib left 12", "rib_left_12"),
        ("tumour", "tumor"),
        ("Small intestine", "small_bowel"),
        ("whole body", "body"),
    ],
)
def test_spellings_and_aliases(written, name):
    assert lookup(written).name == name


def test_every_alias_leads_to_a_name():
    for alias, name in ALIASES.items():
        assert name in names() and alias not in names()
        assert lookup(alias).name == name


def test_unknown_name_lists_close_names_and_explains_explicit_codes():
    with pytest.raises(UnknownTermError) as info:
        lookup("livr")
    err = info.value
    assert isinstance(err, InvalidAttributeError) and isinstance(err, ValueError)
    assert "liver" in err.suggestions and len(err.suggestions) <= 5
    assert all(s in names() for s in err.suggestions)
    assert "close: liver" in str(err) and '"category"' in str(err) and "docs/codes.md" in str(err)
    assert pickle.loads(pickle.dumps(err)).suggestions == err.suggestions


def test_unknown_name_with_nothing_close():
    with pytest.raises(UnknownTermError) as info:
        lookup("zzzzqqq")
    assert info.value.suggestions == () and "close:" not in str(info.value)


def test_many_close_names_are_cut_to_five():
    with pytest.raises(UnknownTermError) as info:
        lookup("rib_left")
    assert len(info.value.suggestions) == 5
    assert all(s.startswith("rib_") for s in info.value.suggestions)


# -- constants ----------------------------------------------------------------------------


def test_constants_match_the_dicom_tables():
    cid7150 = codes.cid7150
    pairs = [
        (rc.ANATOMICAL_STRUCTURE, cid7150.AnatomicalStructure),
        (rc.MORPHOLOGICALLY_ABNORMAL_STRUCTURE, cid7150.MorphologicallyAbnormalStructure),
        (rc.TISSUE, cid7150.Tissue),
        (rc.PHYSICAL_OBJECT, cid7150.PhysicalObject),
        (rc.BODY_SUBSTANCE, cid7150.BodySubstance),
        (rc.SUBSTANCE, cid7150.Substance),
        (rc.FUNCTION, cid7150.Function),
        (rc.SPATIAL_AND_RELATIONAL_CONCEPT, cid7150.SpatialAndRelationalConcept),
        (rc.LEFT, codes.cid244.Left),
        (rc.RIGHT, codes.cid244.Right),
        (rc.BILATERAL, codes.cid244.Bilateral),
        (rc.UNILATERAL, codes.cid244.Unilateral),
        (rc.SEGMENTATION, codes.cid7203.SegmentationImageDerivation),
        (rc.ARTIFICIAL_INTELLIGENCE, codes.cid7162.ArtificialIntelligence),
        (rc.MANUAL_PROCESSING, codes.cid7162.ManualProcessing),
        (
            rc.SOURCE_IMAGE_FOR_IMAGE_PROCESSING_OPERATION,
            codes.cid7202.SourceImageForImageProcessingOperation,
        ),
    ]
    for ours, theirs in pairs:
        assert (ours.value, ours.scheme) == (theirs.value, theirs.scheme_designator)
        assert ours.meaning.lower() == theirs.meaning.lower()
    assert {c.value for c in rc.CATEGORIES} == {getattr(cid7150, k).value for k in cid7150.dir()}


def test_legacy_anatomical_structure_is_read_as_the_same_category():
    assert rc.is_anatomical_structure(rc.LEGACY_ANATOMICAL_STRUCTURE)
    assert rc.is_anatomical_structure(lookup("liver").category)
    assert not rc.is_anatomical_structure(lookup("lesion").category)


def test_public_names():
    assert all(hasattr(rc, name) for name in rc.__all__)
    constants = {n for n in dir(rc) if n.isupper() and not n.startswith("_")}
    assert constants <= set(rc.__all__)


# -- SNOMED CT identifiers ----------------------------------------------------------------


def test_sctid_check_digit_accepts_the_dicom_codes():
    values = set(DICOM_SCT)
    rejected = [v for v in values if not is_valid_sctid(v, concept=False)]
    assert len(values) > 5000 and len(rejected) <= len(values) // 1000, rejected


@given(st.integers(10**5, 10**17 - 1))
def test_sctid_check_digit_catches_one_wrong_digit(number):
    value = str(number)
    check = next(d for d in "0123456789" if is_valid_sctid(value + d, concept=False))
    good = value + check
    for position in range(len(good)):
        for digit in "0123456789":
            if digit != good[position] and (position or digit != "0"):
                bad = good[:position] + digit + good[position + 1 :]
                assert not is_valid_sctid(bad, concept=False), (good, bad)


@pytest.mark.parametrize("value", ["", "12345", "0123456", "12a4567", "1" * 19, "٣٣٣٣٣٣"])
def test_sctid_rejects_malformed_values(value):
    assert not is_valid_sctid(value, concept=False)


def test_sctid_concept_partition():
    # 10200004 (a concept) vs 1020000X with partition 01 (a description-like identifier)
    description = next(
        "1020001" + d for d in "0123456789" if is_valid_sctid("1020001" + d, concept=False)
    )
    assert is_valid_sctid("10200004") and not is_valid_sctid(description)


# -- colours ------------------------------------------------------------------------------


def test_cielab_reference_values():
    # PS3.3 C.10.7.1.1: L* 0..100 -> 0..0xFFFF; a*, b* -128..127 -> 0..0xFFFF, 0 -> 0x8080.
    assert rgb_to_dicom_lab((255, 255, 255)) == (0xFFFF, 0x8080, 0x8080)
    assert rgb_to_dicom_lab((0, 0, 0)) == (0, 0x8080, 0x8080)
    # sRGB primaries (D65): published CIELab values
    for rgb, lab in [
        ((255, 0, 0), (53.24, 80.09, 67.20)),
        ((0, 255, 0), (87.73, -86.18, 83.18)),
        ((0, 0, 255), (32.30, 79.19, -107.86)),
    ]:
        np.testing.assert_allclose(rgb_to_lab(rgb), lab, atol=0.02)


@given(st.tuples(*(st.integers(0, 255) for _ in range(3))))
def test_cielab_round_trip(rgb):
    back = dicom_lab_to_rgb(rgb_to_dicom_lab(rgb))
    assert np.abs(np.subtract(back, rgb)).max() <= 1


@given(st.tuples(*(st.integers(0, 255) for _ in range(3))))
def test_cielab_agrees_with_highdicom(rgb):
    ours = np.array(rgb_to_dicom_lab(rgb))
    theirs = np.array(CIELabColor.from_rgb(*rgb).value)
    assert np.abs(ours - theirs).max() <= 16  # 16/65535 of the range: < 0.07 in a*, b*


def test_table_colours_in_dicom_form():
    for term in map(lookup, names()):
        assert term.dicom_lab == rgb_to_dicom_lab(term.rgb)
        assert dicom_lab_to_rgb(term.dicom_lab) == term.rgb


# -- docs ---------------------------------------------------------------------------------


def test_docs_page_is_generated_from_the_table():
    spec = importlib.util.spec_from_file_location(
        "gen_codes_doc", ROOT / "scripts" / "gen_codes_doc.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = (ROOT / "docs" / "codes.md").read_text("utf-8")
    assert page == module.render()
    assert all(f"| `{name}` |" in page for name in TOTAL)


@pytest.mark.parametrize("text", ["0\n0", "mm\n", "\nmm", "m\n2"])
def test_ucum_check_refuses_line_breaks_instead_of_failing(text):
    # Hypothesis found "0\n0" as a unit: the exponent pattern did not cross the line break
    # and an internal assertion failed instead of the unit being refused
    from radbridge.ucum import is_ucum

    assert is_ucum(text) is False


# UCUM's table of units: m[H2O] "meter of water column" and m[Hg] "meter of mercury column"
# are metric (so they take prefixes); [in_i'H2O] and [in_i'Hg] are not.
@pytest.mark.parametrize(
    "text",
    [
        "cm[H2O]",
        "mm[H2O]",
        "cm[Hg]",
        "m[Hg]",
        "cm[H2O]/L",
        "cm[H2O]/L/s",
        "cm[H2O]/(s.m)",
        "[in_i'Hg]",
        "[in_i'H2O]",
        "m[iU]/mL",
        "[ft_i]2",
    ],
)
def test_ucum_atoms_with_a_bracketed_part_are_units(text):
    from radbridge.ucum import is_ucum

    assert is_ucum(text) is True


@pytest.mark.parametrize(
    "text", ["[H2O]", "c[H2O]", "cm[H2O", "cm[H2O]]", "mm[Hg]mm", "k[in_i'Hg]", "cmH2O"]
)
def test_ucum_bracketed_atoms_need_their_whole_name(text):
    from radbridge.ucum import is_ucum

    assert is_ucum(text) is False
