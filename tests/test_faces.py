"""One public face per object family: pinned names, and docs that import from the faces.

The modules behind a face (``radbridge.iods...``) are private: they may be renamed or
split. A face's names change only on purpose, here and in the docs together.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]

FACES: dict[str, set[str]] = {
    "radbridge.seg": {
        "LABEL_MAP_SEGMENTATION_STORAGE",
        "SEGMENTATION_STORAGE",
        "AlgorithmIdentification",
        "AlgorithmType",
        "FractionalType",
        "Profile",
        "SegmentDescription",
        "Segmentation",
        "SegmentationType",
        "SeriesOptions",
        "StackedMasks",
        "describe_labels",
        "encode_segmentation",
        "load_labels",
        "read_segmentation",
    },
    "radbridge.pm": {
        "PARAMETRIC_MAP_STORAGE",
        "MapDescription",
        "NanPolicy",
        "ParametricMap",
        "Profile",
        "RealWorldValueMapping",
        "SeriesOptions",
        "encode_parametric_map",
        "is_ucum",
        "open_parametric_map",
        "parse_units",
        "read_parametric_map",
    },
    "radbridge.sr": {
        "COMPREHENSIVE_3D_SR_STORAGE",
        "COMPREHENSIVE_SR_STORAGE",
        "AlgorithmIdentification",
        "ContentItem",
        "DeviceObserver",
        "ImageRegion",
        "Measurement",
        "MeasurementGroup",
        "MeasurementReport",
        "QualitativeEvaluation",
        "SegmentReference",
        "SegmentationFrameReference",
        "SeriesOptions",
        "StructuredReport",
        "concepts",
        "content_tree",
        "encode_measurement_report",
        "read_measurement_report",
        "read_structured_report",
        "report_from_json",
        "report_to_json",
    },
    "radbridge.ko": {
        "KEY_OBJECT_SELECTION_STORAGE",
        "KeyObjectReference",
        "KeyObjects",
        "SeriesOptions",
        "encode_key_objects",
        "read_key_objects",
    },
    "radbridge.rtstruct": {
        "ROI",
        "RT_STRUCTURE_SET_STORAGE",
        "AlgorithmIdentification",
        "Contour",
        "ContourGeometricType",
        "ContourOptions",
        "HoleStyle",
        "ROIDescription",
        "ROIGenerationAlgorithm",
        "RTROIInterpretedType",
        "SegmentDescription",
        "SeriesOptions",
        "StructureSet",
        "describe_rois",
        "encode_rtstruct",
        "read_rtstruct",
        "roi_description",
        "rtstruct_to_seg",
        "seg_to_rtstruct",
    },
    "radbridge.sc": {
        "BANNER_TEXT",
        "MULTIFRAME_TRUE_COLOR_SC_STORAGE",
        "OverlayStyle",
        "Profile",
        "Rendering",
        "SeriesOptions",
        "choose_slices",
        "encode_overlay_sc",
        "render_frames",
        "render_overlay",
        "render_png_montage",
    },
    "radbridge.wsi": {
        "VL_WHOLE_SLIDE_MICROSCOPY_IMAGE_STORAGE",
        "Level",
        "OpticalPath",
        "Slide",
        "SlideSegmentation",
        "TileOrganization",
        "encode_slide_segmentation",
        "read_slide",
        "read_slide_segmentation",
    },
    "radbridge.net": {
        "InstanceResult",
        "NullSink",
        "Peer",
        "ReceiverSink",
        "RetrieveReport",
        "SendReport",
        "Sender",
        "StorageSCP",
        "StoredInstance",
        "StowAuth",
        "StowLimits",
        "StowReport",
        "StowServer",
        "TLSConfig",
        "TransferOutcome",
        "echo",
        "find",
        "get",
        "load_peers",
        "move",
        "parse_peer",
        "qido",
        "quiet_pynetdicom",
        "register_transport",
        "resolve_peer",
        "send",
        "sender_for",
        "stow",
        "store_file",
        "transports",
        "unregister_transport",
        "wado",
    },
}


@pytest.mark.parametrize("face", sorted(FACES))
def test_face_exports_exactly_its_pinned_names(face):
    module = importlib.import_module(face)
    assert set(module.__all__) == FACES[face]
    assert len(module.__all__) == len(set(module.__all__))
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    # (pytest's assertion rewriting adds names like '@py_builtins' to modules it loads;
    # a package face holds its submodules once they are imported: they are not names)
    names = {
        n
        for n, value in vars(module).items()
        if n.isidentifier()
        and not n.startswith("_")
        and not (isinstance(value, ModuleType) and value.__name__ == f"{face}.{n}")
    }
    extra = names - FACES[face]
    assert not extra, f"{face} holds names outside __all__: {sorted(extra)}"


def test_shared_names_are_one_object_in_every_face():
    seen: dict[str, object] = {}
    for face in FACES:
        module = importlib.import_module(face)
        for name in module.__all__:
            assert seen.setdefault(name, getattr(module, name)) is getattr(module, name), name


_IMPORT = re.compile(r"^\s*(?:from\s+(radbridge[\w.]*)\s+import|import\s+(radbridge[\w.]*))", re.M)


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


#: Modules behind a face, and old homes of moved names: docs never import from them.
_BEHIND_FACES = re.compile(r"^radbridge\.(iods|net\.\w+|config$)")


def test_docs_import_from_the_faces_not_the_implementation():
    found = []
    for document in [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]:
        for block in _python_blocks(document.read_text()):
            for match in _IMPORT.finditer(block):
                module = match.group(1) or match.group(2)
                if _BEHIND_FACES.match(module):
                    found.append(f"{document.name}: {module}")
    assert not found, "docs import private modules; use the faces:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("line", "private"),
    [
        ("from radbridge.iods.seg.writer import x", True),
        ("from radbridge.net.dimse.scp import StorageSCP", True),
        ("from radbridge.config import Peer", True),
        ("from radbridge.net import StorageSCP", False),
        ("import radbridge.net", False),
        ("from radbridge.seg import encode_segmentation", False),
    ],
)
def test_the_docs_check_sees_a_private_import(line, private):
    (body,) = _python_blocks(f"```python\nimport numpy\n{line}\n```\n")
    (match,) = _IMPORT.finditer(body)
    assert bool(_BEHIND_FACES.match(match.group(1) or match.group(2))) is private


def test_old_names_still_resolve():
    import radbridge.iods.ko
    import radbridge.ko
    import radbridge.sr

    with pytest.warns(DeprecationWarning, match="AlgorithmIdentification"):
        old = radbridge.sr.Algorithm
    assert old is radbridge.sr.AlgorithmIdentification
    assert old("model", "1") == radbridge.sr.AlgorithmIdentification("model", "1")
    assert radbridge.iods.ko.encode_key_objects is radbridge.ko.encode_key_objects
    with pytest.raises(AttributeError):
        radbridge.sr.NoSuchName  # noqa: B018


@pytest.mark.parametrize(
    ("old", "name"),
    [
        ("radbridge.config", "Peer"),
        ("radbridge.config", "load_peers"),
        ("radbridge.net.scp", "StorageSCP"),
        ("radbridge.net.qr", "find"),
        ("radbridge.net.qr", "RetrieveReport"),
    ],
)
def test_moved_network_names_resolve_from_their_old_homes_with_a_warning(old, name):
    import radbridge.net

    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=rf"{old}\.{name} has moved: .*radbridge\.net"):
        value = getattr(module, name)
    assert value is getattr(radbridge.net, name)
    with pytest.raises(AttributeError):
        module.NoSuchName  # noqa: B018
