"""radbridge batch: local and on a real Dask cluster; resumable; failures collected."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from radbridge.batch import read_manifest, run_batch
from radbridge.cli import main
from radbridge.errors import ConfigError
from radbridge.iods.seg import read_segmentation


def outputs(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.dcm"))}


def test_local_batch_collects_failures_and_resumes(manifest_factory, tmp_path, capsys):
    manifest = manifest_factory(3)
    out = tmp_path / "out"
    assert main(["batch", str(manifest), "--out", str(out), "--workers", "2"]) == 1
    assert sorted(outputs(out)) == ["s0.dcm", "s1.dcm", "s2.dcm"]
    rows = list(csv.DictReader((out / "failures.csv").open()))
    assert [r["id"] for r in rows] == ["bad"]
    assert "wrong.npy" in rows[0]["reason"] and "shape" in rows[0]["reason"]
    assert read_segmentation(out / "s1.dcm").dataset.SegmentationType == "LABELMAP"
    capsys.readouterr()
    first = outputs(out)
    # A re-run skips verified outputs and redoes a damaged one.
    (out / "s2.dcm").write_bytes(b"damaged")
    summary = run_batch(read_manifest(manifest), out, workers=1)
    assert (summary.skipped, summary.done, summary.failed) == (2, 1, 1)
    assert outputs(out) == first  # deterministic: the same bytes again


def test_manifest_errors_name_the_row(tmp_path):
    bad = tmp_path / "m.csv"
    bad.write_text("source,kind,input\nct,segmentation,mask.npy\n")
    with pytest.raises(ConfigError, match="row 1: unknown kind"):
        read_manifest(bad)
    bad.write_text("source,input\nct,mask.npy\n")
    with pytest.raises(ConfigError, match="lacks columns"):
        read_manifest(bad)
    bad.write_text("id,source,kind,input,labels\na,x,seg,m.npy,l.json\na,y,seg,n.npy,l.json\n")
    with pytest.raises(ConfigError, match="duplicate id"):
        read_manifest(bad)


@pytest.mark.slow
def test_dask_cluster_gives_the_local_result(manifest_factory, dask_cluster, tmp_path):
    manifest = manifest_factory(4)
    local, remote = tmp_path / "local", tmp_path / "remote"
    run_batch(read_manifest(manifest), local, workers=1)
    summary = run_batch(read_manifest(manifest), remote, scheduler=dask_cluster.address)
    assert (summary.done, summary.failed) == (4, 1)
    assert outputs(remote) == outputs(local)


@pytest.mark.slow
def test_relative_paths_reach_workers_in_another_folder(
    manifest_factory, dask_cluster, tmp_path, monkeypatch
):
    """`radbridge batch manifest.csv --out results/` as docs/batch.md shows it, on Dask.

    The workers run in folders of their own (as on other hosts): relative manifest and
    output paths must reach them as absolute ones. Before, the row failed with
    's0/dicom: no such file or folder'.
    """
    manifest = manifest_factory(1, bad_row=False)
    monkeypatch.chdir(manifest.parent)
    args = ["batch", "manifest.csv", "--out", "results", "--scheduler", dask_cluster.address]
    assert main([*args, "--json"]) == 0
    assert sorted(outputs(manifest.parent / "results")) == ["s0.dcm"]


@pytest.mark.slow
def test_worker_killed_mid_batch_loses_no_row(manifest_factory, dask_cluster, tmp_path):
    manifest = manifest_factory(8, slices=40, size=192, bad_row=False)
    killed = []

    def kill_after_first(result, finished, total):
        if not killed:
            dask_cluster.kill_worker(0)
            killed.append(result.id)

    out = tmp_path / "out"
    summary = run_batch(
        read_manifest(manifest), out, scheduler=dask_cluster.address, progress=kill_after_first
    )
    assert killed and dask_cluster.workers[0].poll() is not None
    assert (summary.done, summary.failed) == (8, 0)
    assert len(outputs(out)) == 8
    for path in out.glob("*.dcm"):
        read_segmentation(path)  # every output is complete


def test_rtstruct_rows(manifest_factory, tmp_path):
    import pydicom

    from radbridge.iods.rtstruct import read_rtstruct

    manifest = manifest_factory(1, bad_row=False)
    text = (
        manifest.read_text()
        .replace(",seg,", ",rtstruct,")
        .replace(
            '"{""type"": ""binary"", ""compression"": ""explicit""}"', '"{""allow_empty"": true}"'
        )
    )
    rt_manifest = manifest.with_name("rt.csv")
    rt_manifest.write_text(text)
    summary = run_batch(read_manifest(rt_manifest), tmp_path / "out")
    assert (summary.done, summary.failed) == (1, 0), summary.results
    ds = pydicom.dcmread(tmp_path / "out" / "s0.dcm")
    assert ds.Modality == "RTSTRUCT"
    assert len(read_rtstruct(ds).rois) == 7


def test_gsps_rows(manifest_factory, tmp_path):
    import pydicom

    from radbridge.io.series import read_series
    from radbridge.pr import read_gsps

    manifest = manifest_factory(1, bad_row=False)
    text = (
        manifest.read_text()
        .replace(",seg,", ",gsps,")
        .replace(
            '"{""type"": ""binary"", ""compression"": ""explicit""}"',
            '"{""window"": [-600, 1500], ""areas"": true, ""allow_empty"": true}"',
        )
    )
    ps_manifest = manifest.with_name("ps.csv")
    ps_manifest.write_text(text)
    out = tmp_path / "out"
    summary = run_batch(read_manifest(ps_manifest), out)
    assert (summary.done, summary.failed) == (1, 0), summary.results
    ds = pydicom.dcmread(out / "s0.dcm")
    assert ds.Modality == "PR"
    ((window, _),) = read_gsps(ds).windows
    assert (window.center, window.width) == (-600.0, 1500.0)
    texts = [
        t.UnformattedTextValue for a in ds.GraphicAnnotationSequence for t in a.TextObjectSequence
    ]
    assert texts and all(t.endswith("mm2") for t in texts)
    truth = np.load(manifest.parent / "s0" / "labels.npy")
    source = read_series(manifest.parent / "s0" / "dicom")
    assert np.array_equal(read_gsps(ds).label_volume(source).array, truth)
    first = (out / "s0.dcm").read_bytes()
    (out / "s0.dcm").unlink()
    run_batch(read_manifest(ps_manifest), out)
    assert (out / "s0.dcm").read_bytes() == first  # the same row gives the same bytes
    bad = ps_manifest.with_name("bad.csv")
    bad.write_text(text.replace('""areas"": true', '""window"": 3'))
    failed = run_batch(read_manifest(bad), tmp_path / "bad")
    assert failed.failed == 1
    assert "gsps options are malformed" in str(failed.results)


def test_sr_and_pm_rows_and_resume(manifest_factory, tmp_path):
    import pydicom

    from radbridge.iods.pm import read_parametric_map
    from radbridge.iods.sr import read_measurement_report

    manifest = manifest_factory(1, bad_row=False)
    root = manifest.parent
    summary = run_batch(read_manifest(manifest), root / "segs")  # the SEG the report refers to
    assert summary.done == 1
    (root / "report.json").write_text(
        json.dumps(
            {
                "groups": [
                    {
                        "tracking_id": "organ 5",
                        "segment": 5,
                        "measurements": [
                            {
                                "concept": {
                                    "value": "118565006",
                                    "scheme": "SCT",
                                    "meaning": "Volume",
                                },
                                "value": 12.5,
                                "unit": "ml",
                            }
                        ],
                    }
                ]
            }
        )
    )
    heat = np.random.default_rng(0).random((6, 32, 32)).astype(np.float32)
    np.save(root / "heat.npy", heat)
    quantity = '{""value"": ""130402"", ""scheme"": ""DCM"", ""meaning"": ""Class activation""}'
    (root / "more.csv").write_text(
        "id,source,kind,input,options\n"
        'r,s0/dicom,sr,report.json,"{""seg"": ""segs/s0.dcm""}"\n'
        f'm,s0/dicom,pm,heat.npy,"{{""units"": ""{{probability}}"", ""quantity"": {quantity}}}"\n'
        "x,s0/dicom,pm,heat.npy,\n"
    )
    out = tmp_path / "out"
    summary = run_batch(read_manifest(root / "more.csv"), out)
    assert (summary.done, summary.failed) == (2, 1), summary.results
    failure = next(r for r in summary.results if not r.ok)
    assert "units and quantity" in failure.error
    report = read_measurement_report(out / "r.dcm")
    seg = pydicom.dcmread(root / "segs" / "s0.dcm", stop_before_pixels=True)
    assert report.groups[0].segment.sop_instance_uid == seg.SOPInstanceUID
    np.testing.assert_array_equal(read_parametric_map(out / "m.dcm").array, heat)
    first = (out / "r.dcm").read_bytes()
    again = run_batch(read_manifest(root / "more.csv"), out)
    assert again.skipped == 2 and (out / "r.dcm").read_bytes() == first


@pytest.mark.peer
def test_dicomweb_url_sources(manifest_factory, orthanc, tmp_path):
    """A row's source can be a DICOMweb series URL: fetched once, then encoded as usual."""
    import pydicom

    manifest = manifest_factory(1, bad_row=False)
    root = manifest.parent
    study = pydicom.dcmread(next((root / "s0" / "dicom").glob("*.dcm")), stop_before_pixels=True)
    orthanc.upload_many(sorted((root / "s0" / "dicom").glob("*.dcm")))
    url = (
        f"{orthanc.dicomweb_url}/studies/{study.StudyInstanceUID}/series/{study.SeriesInstanceUID}"
    )
    text = manifest.read_text().replace("s0/dicom", url)
    (root / "web.csv").write_text(text)
    assert run_batch(read_manifest(manifest), tmp_path / "local").done == 1
    remote = run_batch(read_manifest(root / "web.csv"), tmp_path / "remote")
    assert (remote.done, remote.failed) == (1, 0), remote.results
    assert (tmp_path / "remote" / "s0.dcm").read_bytes() == (
        tmp_path / "local" / "s0.dcm"
    ).read_bytes()
    fetched = tmp_path / "remote" / ".sources" / study.StudyInstanceUID / study.SeriesInstanceUID
    assert len(list(fetched.glob("*.dcm"))) == 6
    assert not [p for p in (tmp_path / "remote" / ".sources").iterdir() if p.name.startswith(".")]
    with pytest.raises(ConfigError, match="not a DICOMweb series URL"):
        (root / "bad.csv").write_text(text.replace("/series/", "/serie/"))
        read_manifest(root / "bad.csv")
