"""One public face per object family: pinned names, and docs that import from the faces.

The faces are the top-level ``radbridge``, one per object family (``radbridge.seg``,
``.pm``, ``.sr``, ``.ko``, ``.rtstruct``, ``.sc``, ``.wsi``) and ``radbridge.net``,
``radbridge.results``, ``radbridge.gateway`` and ``radbridge.models``. The modules
behind a face (``radbridge.iods...``, ``radbridge.net.dimse...``) are private: they may
be renamed or split, and each says what it offers to its neighbours in ``__all__``. A
face's names change only on purpose, here and in the docs together.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest

from tests.test_layers import FAMILIES

ROOT = Path(__file__).resolve().parents[1]

FACES: dict[str, set[str]] = {
    "radbridge": {
        "AlgorithmIdentification",
        "Code",
        "Gateway",
        "Measurement",
        "MeasurementGroup",
        "MeasurementReport",
        "Peer",
        "RadbridgeError",
        "SegmentDescription",
        "Segmentation",
        "Series",
        "SeriesOptions",
        "SliceRef",
        "SourceSeries",
        "StorageSCP",
        "Volume",
        "VolumeGeometry",
        "__version__",
        "encode_key_objects",
        "encode_measurement_report",
        "encode_overlay_sc",
        "encode_parametric_map",
        "encode_rtstruct",
        "encode_segmentation",
        "load_gateway_config",
        "read_image",
        "read_key_objects",
        "read_measurement_report",
        "read_parametric_map",
        "read_rtstruct",
        "read_segmentation",
        "read_series",
        "read_source_series",
        "read_structured_report",
        "read_volume",
        "render_overlay",
        "scan",
        "send",
        "volume_from_datasets",
        "write_image",
    },
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
        "TimePoint",
        "ValueChange",
        "Comparison",
        "LesionChange",
        "compare_reports",
        "comparison_report",
        "concepts",
        "content_tree",
        "encode_comparison",
        "encode_measurement_report",
        "longitudinal",
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
    "radbridge.pr": {
        "COLOR_SOFTCOPY_PRESENTATION_STATE_STORAGE",
        "GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE",
        "AnnotationUnits",
        "GraphicAnnotation",
        "GraphicGroup",
        "GraphicLayer",
        "GraphicObject",
        "GraphicType",
        "OutlineOptions",
        "PresentationState",
        "SegmentStyle",
        "SeriesOptions",
        "TextObject",
        "Window",
        "encode_gsps",
        "encode_presentation_state",
        "read_gsps",
        "rtstruct_to_gsps",
        "seg_to_gsps",
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
    "radbridge.legacy": {
        "LEGACY_CONVERTED_ENHANCED_CT_IMAGE_STORAGE",
        "LEGACY_CONVERTED_ENHANCED_MR_IMAGE_STORAGE",
        "LEGACY_CONVERTED_ENHANCED_PET_IMAGE_STORAGE",
        "LegacyEnhancedImage",
        "SeriesOptions",
        "encode_legacy_enhanced",
        "read_legacy_enhanced",
    },
    "radbridge.ann": {
        "MICROSCOPY_BULK_SIMPLE_ANNOTATIONS_STORAGE",
        "Annotation",
        "AnnotationGroup",
        "AnnotationGroupDescription",
        "AnnotationGraphicType",
        "MeasurementDescription",
        "MicroscopyAnnotations",
        "read_annotations",
        "write_annotations",
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
        "AlertMessage",
        "AlertPatient",
        "AlertReason",
        "AlertTarget",
        "AlertTargets",
        "FhirTarget",
        "Hl7Target",
        "InstanceResult",
        "WebhookTarget",
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
        "send_alert",
        "sender_for",
        "stow",
        "store_file",
        "transports",
        "unregister_transport",
        "wado",
    },
    "radbridge.results": {
        "AnnOutput",
        "GspsOutput",
        "KoOutput",
        "Output",
        "OutputKind",
        "PmOutput",
        "ResultContext",
        "ResultOptions",
        "RtstructOutput",
        "ScOutput",
        "SegOutput",
        "SlideSegOutput",
        "SrOutput",
        "encode_results",
        "output_kind",
        "output_kinds",
        "register_output",
    },
    "radbridge.gateway": {"Gateway", "GatewayConfig", "load_gateway_config"},
    "radbridge.models": {
        "AlgorithmInfo",
        "Finding",
        "FunctionModel",
        "Model",
        "ModelAnnotations",
        "ModelMeasurement",
        "ModelResult",
        "SeriesInfo",
        "SlideModel",
        "load_model",
        "run_model",
        "run_slide_model",
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


#: Where the docs' examples may import from: the faces, and the public modules of the
#: layers without one (errors, codes, geometry, reading series, the NIfTI/NRRD and
#: model-framework (TotalSegmentator, nnU-Net, MONAI) edges,
#: the phantom that makes example data, batch manifests). Anything else is behind a face.
DOC_HOMES = set(FACES) | {
    "radbridge.batch",
    "radbridge.codes",
    "radbridge.coding",
    "radbridge.errors",
    "radbridge.geometry",
    "radbridge.io.model_outputs",
    "radbridge.io.nifti",
    "radbridge.io.phantom",
    "radbridge.io.series",
}


def _behind_the_faces(module: str) -> bool:
    return module not in DOC_HOMES


def test_docs_import_from_the_faces_not_the_implementation():
    found = []
    for document in [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]:
        for block in _python_blocks(document.read_text()):
            for match in _IMPORT.finditer(block):
                module = match.group(1) or match.group(2)
                if _behind_the_faces(module):
                    found.append(f"{document.name}: {module}")
    assert not found, "docs import private modules; use the faces:\n" + "\n".join(found)


def test_docs_homes_declare_their_names():
    for module in sorted(DOC_HOMES):
        assert importlib.import_module(module).__all__, module


@pytest.mark.parametrize(
    ("line", "private"),
    [
        ("from radbridge.iods.seg.writer import x", True),
        ("from radbridge.net.dimse.scp import StorageSCP", True),
        ("from radbridge.config import Peer", True),
        ("from radbridge.io.describe import describe", True),
        ("from radbridge.gateway.store import Store", True),
        ("from radbridge.net import StorageSCP", False),
        ("import radbridge.net", False),
        ("import radbridge", False),
        ("from radbridge.seg import encode_segmentation", False),
        ("from radbridge.io.series import read_series", False),
    ],
)
def test_the_docs_check_sees_a_private_import(line, private):
    (body,) = _python_blocks(f"```python\nimport numpy\n{line}\n```\n")
    (match,) = _IMPORT.finditer(body)
    assert _behind_the_faces(match.group(1) or match.group(2)) is private


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


#: Modules that need no ``__all__``: the command modules of the CLI (their interface is
#: the command line) and the old homes of moved names (a forwarding ``__getattr__``).
_NO_ALL = re.compile(r"^radbridge\.(cli\.\w+|config|net\.qr|net\.scp)$")


def _declares_all(tree: ast.Module) -> bool:
    for node in tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return True
        if isinstance(node, ast.ImportFrom) and any(
            (a.asname or a.name) == "__all__" for a in node.names
        ):
            return True
    return False


def _only_a_docstring(tree: ast.Module) -> bool:
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in tree.body)


def modules_without_all(root: Path) -> list[str]:
    """Modules under ``root`` with code but no ``__all__`` (private modules aside)."""
    missing = []
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        if any(p.startswith("_") for p in parts) or _NO_ALL.match(name):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if not _declares_all(tree) and not _only_a_docstring(tree):
            missing.append(name)
    return missing


def test_every_module_behind_the_faces_says_what_it_offers_in_all():
    assert modules_without_all(ROOT / "src") == []


def test_the_all_check_finds_a_module_without_one(tmp_path):
    package = tmp_path / "radbridge" / "iods" / "seg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""Only a docstring."""\n')
    (package / "writer.py").write_text("def encode():\n    pass\n")
    (package / "reader.py").write_text('__all__ = ["read"]\n\n\ndef read():\n    pass\n')
    (package / "_frames.py").write_text("def plan():\n    pass\n")
    assert modules_without_all(tmp_path) == ["radbridge.iods.seg.writer"]


#: Object families (the layer test's, and the KOS face); a new family is checked here
#: as soon as it has a face in FACES. Readers of a whole series (many files) take `source`.
_FAMILIES = {*FAMILIES, "ko"}
#: Encoders whose source is not a Series: a slide's SEG is made on a `slide`, and a
#: legacy converted image is made of the classic images themselves (`datasets`).
_SOURCE_PARAMETER = {"radbridge.wsi": "slide", "radbridge.legacy": "datasets"}
_SERIES_READERS = {"read_slide"}
_FAMILY_FACES = [f for f in FACES if f.count(".") == 1 and f.split(".")[1] in _FAMILIES]


@pytest.mark.parametrize("face", _FAMILY_FACES)
def test_encoders_and_readers_name_their_parameters_alike(face):
    # every writer: what it encodes first, the source series second as `source` (see
    # _SOURCE_PARAMETER), the series options as keyword-only `options` (`series=` only
    # as its deprecated old name);
    # every reader of one object: what it opens as `file` (a path, bytes or a data set)
    module = importlib.import_module(face)
    for name in module.__all__:
        value = getattr(module, name)
        if not callable(value) or isinstance(value, type):
            continue
        params = inspect.signature(value).parameters
        if name.startswith("encode_"):
            assert _SOURCE_PARAMETER.get(face, "source") in params, name
            if face not in _SOURCE_PARAMETER:
                assert list(params).index("source") == 1, name
            assert params["options"].kind is inspect.Parameter.KEYWORD_ONLY, name
            if "series" in params:
                assert params["series"].kind is inspect.Parameter.KEYWORD_ONLY, name
                assert params["series"].default is None, name
        elif name.startswith(("read_", "open_")) and name not in _SERIES_READERS:
            assert next(iter(params)) == "file", name
