"""Batch rows stay inside --out; every unit passes the one UCUM check; CLI quantity form."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pydicom

from radbridge.batch import read_manifest, run_batch
from radbridge.cli import main

ML = {"value": "118565006", "scheme": "SCT", "meaning": "Volume"}


def _failures(out):
    return {r["id"]: r["reason"] for r in csv.DictReader((out / "failures.csv").open())}


def test_outputs_outside_out_are_refused_per_row(manifest_factory, tmp_path):
    manifest = manifest_factory(1, bad_row=False)
    root = manifest.parent
    out = tmp_path / "deep" / "out"
    out.mkdir(parents=True)
    (out / "link").symlink_to(tmp_path)  # a folder inside --out that leads out of it
    absolute = tmp_path / "absolute.dcm"
    row = "s0/dicom,seg,s0/labels.npy,labels.json"
    (root / "unsafe.csv").write_text(
        "id,source,kind,input,labels,output\n"
        f"ok,{row},fine/ok.dcm\n"
        f"up,{row},../../up.dcm\n"
        f"abs,{row},{absolute}\n"
        f"../escaped,{row},\n"
        f"sym,{row},link/sym.dcm\n"
    )
    before = set(tmp_path.rglob("*"))
    assert main(["batch", str(root / "unsafe.csv"), "--out", str(out), "--workers", "1"]) == 1
    failures = _failures(out)
    assert sorted(failures) == ["../escaped", "abs", "sym", "up"]
    assert all("outside --out" in reason for reason in failures.values())
    assert (out / "fine" / "ok.dcm").is_file()
    written = {p for p in set(tmp_path.rglob("*")) - before if out not in p.parents}
    assert written == set(), f"written outside --out: {written}"
    assert not absolute.exists() and not (tmp_path / "up.dcm").exists()


def test_pm_row_takes_the_cli_quantity_form_and_units_are_ucum(manifest_factory, tmp_path):
    root = manifest_factory(1, bad_row=False).parent
    heat = np.random.default_rng(1).random((6, 32, 32)).astype(np.float32)
    np.save(root / "heat.npy", heat)
    report = {
        "groups": [
            {
                "tracking_id": "lesion",
                "measurements": [{"concept": ML, "value": 3.5, "unit": "milliliters"}],
            }
        ]
    }
    (root / "bad-unit.json").write_text(json.dumps(report))
    (root / "rows.csv").write_text(
        "id,source,kind,input,options\n"
        'pm,s0/dicom,pm,heat.npy,"{""units"": ""{probability}"", '
        '""quantity"": ""DCM:130402:Class activation""}"\n'
        'pm-unit,s0/dicom,pm,heat.npy,"{""units"": ""probability"", '
        '""quantity"": ""DCM:130402:Class activation""}"\n'
        "sr-unit,s0/dicom,sr,bad-unit.json,\n"
    )
    out = tmp_path / "out"
    summary = run_batch(read_manifest(root / "rows.csv"), out)
    assert (summary.done, summary.failed) == (1, 2), summary.results
    failures = _failures(out)
    assert "'probability' is not a UCUM unit" in failures["pm-unit"]
    assert "'milliliters' is not a UCUM unit" in failures["sr-unit"]
    ds = pydicom.dcmread(out / "pm.dcm")
    mapping = ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    quantity = mapping.QuantityDefinitionSequence[0].ConceptCodeSequence[0]
    assert (quantity.CodeValue, quantity.CodingSchemeDesignator) == ("130402", "DCM")
    assert mapping.MeasurementUnitsCodeSequence[0].CodeValue == "{probability}"


def test_sr_encode_refuses_units_that_are_not_ucum(manifest_factory, tmp_path, capsys):
    root = manifest_factory(1, bad_row=False).parent
    for unit, ok in (("milliliters", False), ("ml", True), ("{SUVbw}g/ml", True)):
        report = {
            "groups": [
                {"tracking_id": "x", "measurements": [{"concept": ML, "value": 1, "unit": unit}]}
            ]
        }
        path = tmp_path / "r.json"
        path.write_text(json.dumps(report))
        argv = ["sr", "encode", str(path), "--source", str(root / "s0" / "dicom")]
        code = main([*argv, "-o", str(tmp_path / "sr.dcm")])
        err = capsys.readouterr().err
        assert code == (0 if ok else 1), err
        if not ok:
            assert f"'{unit}' is not a UCUM unit" in err and "MeasurementUnitsCodeSequence" in err
    assert os.path.exists(tmp_path / "sr.dcm")
