"""DCMTK reads our presentation states: dcmpschk checks them, dcmp2pgm applies them.

``dcmp2pgm -v -p PS IMAGE`` loads the image and the presentation state with DCMTK's
presentation state model (dcmpstat) and dumps the state as applied to that image: the
window, the displayed area, and per graphic layer every text and graphic object with
its coordinates. For every image we outline, DCMTK must find exactly the layers, texts
and points we wrote (values parsed from its dump, compared with ours as written).
"""

from __future__ import annotations

import re

import numpy as np
import pydicom
import pytest

from radbridge.pr import OutlineOptions, encode_gsps
from tests.peers import dcmp2pgm_dump, dcmpschk

from .conftest import save

pytestmark = pytest.mark.peer

_LAYER = re.compile(r"^I: Graphic Layer #\d+ \[(?P<name>[^\]]*)\]")
_TEXT = re.compile(r'^I:\s+text \d+: "(?P<text>.*)"$')
_ANCHOR = re.compile(r"^I:\s+anchor point: (?P<x>[-\d.e]+)\\(?P<y>[-\d.e]+) units=pixel")
_BOX = re.compile(
    r"^I:\s+bounding box: TLHC=(?P<l>[-\d.e]+)\\(?P<t>[-\d.e]+) "
    r"BRHC=(?P<r>[-\d.e]+)\\(?P<b>[-\d.e]+) units=pixel justification=(?P<j>\w+)"
)
_GRAPHIC = re.compile(r"^I:\s+graphic \d+: points=(?P<n>\d+) type=(?P<t>\w+) filled=(?P<f>\w+)")
_POINTS = re.compile(r"^I:\s+coordinates: (?P<points>.*)$")
_WINDOW = re.compile(r"^I: VOI transformation: window center=(?P<c>[-\d.e]+) width=(?P<w>[-\d.e]+)")
_AREA = re.compile(r"^I:\s+displayed area TLHC=(?P<tl>\S+) BRHC=(?P<br>\S+)")


def parse(dump: str) -> dict:
    """Layers (texts, graphics), window and displayed area from dcmp2pgm's dump."""
    out: dict = {"layers": {}}
    layer = None
    for line in dump.splitlines():
        if m := _LAYER.match(line):
            layer = out["layers"].setdefault(m["name"], {"texts": [], "graphics": []})
        elif (m := _TEXT.match(line)) and layer is not None:
            layer["texts"].append({"text": m["text"]})
        elif (m := _ANCHOR.match(line)) and layer is not None:
            layer["texts"][-1]["anchor"] = (float(m["x"]), float(m["y"]))
        elif (m := _BOX.match(line)) and layer is not None:
            box = tuple(float(m[k]) for k in "ltrb")
            layer["texts"][-1]["box"], layer["texts"][-1]["justification"] = box, m["j"]
        elif (m := _GRAPHIC.match(line)) and layer is not None:
            layer["graphics"].append({"n": int(m["n"]), "type": m["t"], "filled": m["f"]})
        elif (m := _POINTS.match(line)) and layer is not None:
            pairs = [p.split("\\") for p in m["points"].split(", ") if p.strip()]
            layer["graphics"][-1]["points"] = [(float(x), float(y)) for x, y in pairs]
        elif m := _WINDOW.match(line):
            out["window"] = (float(m["c"]), float(m["w"]))
        elif m := _AREA.match(line):
            out["area"] = (m["tl"], m["br"])
    return out


def expected(ds, uid: str, frame: int | None = None) -> dict:
    """What we wrote for one image (frame): per layer, texts and graphics (pydicom values)."""
    layers = {item.GraphicLayer: {"texts": [], "graphics": []} for item in ds.GraphicLayerSequence}
    for item in ds.GraphicAnnotationSequence:
        (image,) = item.ReferencedImageSequence
        if image.ReferencedSOPInstanceUID != uid or image.get("ReferencedFrameNumber") != frame:
            continue
        layer = layers[item.GraphicLayer]
        for t in item.get("TextObjectSequence", []):
            layer["texts"].append(
                {
                    "text": t.UnformattedTextValue,
                    "anchor": tuple(float(v) for v in t.AnchorPoint),
                    "box": (
                        *(float(v) for v in t.BoundingBoxTopLeftHandCorner),
                        *(float(v) for v in t.BoundingBoxBottomRightHandCorner),
                    ),
                    "justification": t.BoundingBoxTextHorizontalJustification.lower(),
                }
            )
        for g in item.GraphicObjectSequence:
            points = np.reshape(np.asarray(g.GraphicData, float), (-1, 2))
            layer["graphics"].append(
                {
                    "n": int(g.NumberOfGraphicPoints),
                    "type": g.GraphicType.lower(),
                    "filled": "yes" if g.GraphicFilled == "Y" else "no",
                    "points": [(float(x), float(y)) for x, y in points],
                }
            )
    return layers


def test_dcmpschk_passes(study, tmp_path):
    ds = encode_gsps(study.labels, study.source, study.present, outlines=OutlineOptions(areas=True))
    result = dcmpschk(save(ds, tmp_path))
    assert "Test passed." in result.output, result.output


def test_dcmpschk_fails_a_broken_one(study, tmp_path):
    """The checker is not blind: without its Presentation LUT Shape the same file fails."""
    ds = encode_gsps(study.labels, study.source, study.present)
    del ds.PresentationLUTShape
    result = dcmpschk(save(ds, tmp_path))
    assert "Test failed" in result.output, result.output


def test_dcmtk_finds_every_text_and_point_on_every_image(study, tmp_path):
    ds = encode_gsps(
        study.labels,
        study.source,
        study.present,
        outlines=OutlineOptions(areas=True),
        measurements={5: "volume 12.5 ml"},
        window=(-600, 1500),
    )
    path = save(ds, tmp_path)
    written = pydicom.dcmread(path)
    files = {
        pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p
        for p in study.folder.iterdir()
    }
    checked = 0
    for k, ref in enumerate(study.source.slice_refs):
        dump = dcmp2pgm_dump(files[ref.sop_instance_uid], path, tmp_path / f"{k}.pgm")
        theirs = parse(dump)
        assert theirs["window"] == (-600.0, 1500.0)
        assert theirs["area"] == ("1\\1", "64\\64")
        assert theirs["layers"] == expected(written, ref.sop_instance_uid), f"slice {k}"
        checked += sum(len(layer["graphics"]) for layer in theirs["layers"].values())
    assert checked == sum(len(a.GraphicObjectSequence) for a in written.GraphicAnnotationSequence)
