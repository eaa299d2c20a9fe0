"""Whole-slide images through the gateway: a slide model, ``slide-seg`` and ``ann`` outputs.

In-process: a slide series goes the slide path and its objects land in the outbox with
UIDs fixed by the job; rules that cannot work are refused at load or dead-lettered with
the reason. End to end: ``radbridge gateway run`` receives a tiled slide by C-STORE,
runs the reference slide model, and a real Orthanc receives the SEG and the annotations,
which highdicom reads back with the values the model gave.
"""

from __future__ import annotations

import io
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest

from radbridge.errors import ConfigError
from radbridge.gateway import Gateway, load_gateway_config
from radbridge.gateway.routing import Match, Rule
from radbridge.gateway.runner import compute_results
from radbridge.gateway.store import JobState
from radbridge.io.slide_phantom import write_slide_phantom
from radbridge.models import SeriesInfo, run_slide_model
from radbridge.models.reference_slide import ReferenceSlideModel
from radbridge.wsi import read_slide
from tests.gateway.conftest import query, receive, undated
from tests.gateway.processes import GatewayProcess, jobs_done, wait_until, write_config
from tests.gateway.test_core import files_of, jobs, run_until_idle
from tests.peers import dciodvfy, free_port

DOCS = Path(__file__).resolve().parents[2] / "docs"
SLIDE_RULE = Rule(
    "tissue",
    model="reference-slide",
    match=Match(modality=("SM",)),
    outputs=("slide-seg", "ann"),
)


@pytest.fixture(scope="module")
def slide_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gw-slide")
    write_slide_phantom(folder, size=(512, 768), tile=128, levels=2, seed=5)
    return folder


@pytest.fixture(scope="module")
def expected(slide_folder):
    """What the reference model finds on the slide, run here outside the gateway."""
    slide = read_slide(slide_folder)
    result = run_slide_model(ReferenceSlideModel(), slide, SeriesInfo(modality="SM"))
    (group,) = result.annotations
    return result, list(group.annotations)


def _slide_files(folder):
    return sorted(Path(folder).glob("level*.dcm"))


def _outbox(gateway):
    return {path.stem: path for path in gateway.config.outbox_dir.rglob("*.dcm")}


def _check_objects(seg_path, ann_path, expected):
    """highdicom reads the SEG's mask and the annotations' points and areas exactly."""
    import highdicom as hd

    result, annotations = expected
    seg = hd.seg.segread(seg_path)
    matrix = seg.get_total_pixel_matrix(combine_segments=True)
    assert matrix.shape == result.slide_labels.shape and matrix.any()
    np.testing.assert_array_equal(matrix, result.slide_labels)
    assert seg.get_segment_description(1).segment_label == "Tissue"
    (group,) = hd.ann.annread(ann_path).get_annotation_groups()
    points = np.array(group.get_graphic_data("2D"))[:, 0]
    np.testing.assert_array_equal(points, np.vstack([p for p, _ in annotations]))
    _, values, _ = group.get_measurements()
    np.testing.assert_array_equal(values[:, 0], np.float32([v for _, (v,) in annotations]))


@pytest.mark.peer
def test_a_slide_series_goes_the_slide_path(config, slide_folder, expected):
    gateway = Gateway(replace(config, rules=(SLIDE_RULE,)))
    try:
        receive(gateway, _slide_files(slide_folder))
        run_until_idle(gateway)
        (job,) = jobs(gateway)
        assert job["state"] == JobState.DONE, job["error"]
        found = _outbox(gateway)
    finally:
        gateway.close()
    assert set(found) == {"slide-seg", "ann"}
    for path in found.values():
        assert dciodvfy(path).errors == [], path
    _check_objects(found["slide-seg"], found["ann"], expected)
    seg, ann = (pydicom.dcmread(found[k]) for k in ("slide-seg", "ann"))
    assert (seg.SeriesNumber, ann.SeriesNumber) == (907, 908)
    assert seg.ContentLabel == "SLIDE_SEG" and seg.DimensionOrganizationType == "TILED_FULL"
    assert seg.SeriesDescription == "AI slide segmentation (radbridge-reference-slide)"
    level = read_slide(slide_folder).level(expected[0].level)
    assert ann.ReferencedImageSequence[0].ReferencedSOPInstanceUID == (
        level.datasets[0].SOPInstanceUID
    )


def test_a_rerun_writes_the_same_bytes(config, slide_folder):
    """The UIDs and time come from the job: computing it twice gives identical objects."""
    gateway = Gateway(replace(config, rules=(SLIDE_RULE,)))
    try:
        receive(gateway, _slide_files(slide_folder))
        gateway.assemble_once()
        (row,) = jobs(gateway)
        job = gateway.store.job(row["id"])
        paths = [i.path for i in gateway.store.version_inputs(job.series_instance_uid, 1)]
        first = compute_results(job, SLIDE_RULE, paths)
        second = compute_results(job, SLIDE_RULE, paths)
    finally:
        gateway.close()
    assert [kind for kind, _, _ in first.items] == ["slide-seg", "ann"]
    assert first.items == second.items
    other = compute_results(job, replace(SLIDE_RULE, name="other"), paths)
    assert {uid for _, uid, _ in other.items}.isdisjoint({uid for _, uid, _ in first.items})


@pytest.mark.parametrize(
    ("rule", "source", "message"),
    [
        # rules without conditions, so the load could not know what they would meet
        (
            Rule("anything", model="reference-ct", outputs=("seg", "sr")),
            "slide",
            "asks for radiology outputs ['seg', 'sr'] on a whole-slide image",
        ),
        (
            Rule("slides?", model="reference-slide", outputs=("slide-seg",)),
            "ct",
            "slide outputs ['slide-seg'] on a series that is no whole-slide image",
        ),
        (
            replace(SLIDE_RULE, model="reference-ct"),
            "slide",
            "model reference-ct takes volumes; the series is a whole-slide image",
        ),
    ],
    ids=["radiology-on-slide", "slide-on-ct", "volume-model-on-slide"],
)
def test_jobs_that_cannot_work_are_dead_lettered_with_the_reason(
    config, request, rule, source, message
):
    if source == "slide":
        files = _slide_files(request.getfixturevalue("slide_folder"))
    else:
        files = files_of(request.getfixturevalue("phantom_study"))
    gateway = Gateway(replace(config, rules=(rule,)))
    try:
        receive(gateway, files)
        run_until_idle(gateway)
        (job,) = jobs(gateway)
    finally:
        gateway.close()
    assert (job["state"], job["attempts"]) == (JobState.DEAD, 1)  # permanent: no retries
    assert message in job["error"]


def _rules_toml(tmp_path, rule_lines):
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[gateway]\ndata_dir = "data"\n\n[[rules]]\nname = "r"\n' + "\n".join(rule_lines) + "\n"
    )
    return path


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ['model = "reference-slide"', 'outputs = ["slide-seg", "sr"]'],
            r"mixes slide outputs \['slide-seg'\] with radiology outputs \['sr'\]",
        ),
        (
            ['model = "reference-slide"', "[rules.match]", 'modality = ["SM"]'],
            "matches only slide microscopy .* radiology outputs",
        ),
        (
            [
                'model = "x"',
                'outputs = ["seg"]',
                "[rules.match]",
                'sop_class_uid = ["1.2.840.10008.5.1.4.1.1.77.1.6"]',
            ],
            "matches only slide microscopy",
        ),
        (
            [
                'model = "reference-slide"',
                'outputs = ["ann"]',
                "[rules.match]",
                'modality = ["CT"]',
            ],
            r"asks for slide outputs \['ann'\] but matches no slide microscopy",
        ),
        (
            ['model = "reference-slide"', 'outputs = ["slide-seg"]', "deidentify = true"],
            "does not do for whole-slide images",
        ),
        (
            ['model = "reference-slide"', 'outputs = ["slide-seg"]', 'seg_type = "labelmap"'],
            "labelmap SEG, which slides cannot have",
        ),
    ],
)
def test_rules_that_cannot_work_on_their_series_are_refused_at_load(tmp_path, lines, message):
    with pytest.raises(ConfigError, match=message):
        load_gateway_config(_rules_toml(tmp_path, lines))


def test_the_documented_slide_rule_loads(tmp_path):
    text = (DOCS / "gateway.md").read_text()
    block = text[text.index('[[rules]]\nname = "tissue"') :].split("```")[0]
    path = tmp_path / "gateway.toml"
    path.write_text(block.replace('destinations = ["pacs"]', 'destinations = ["archive"]'))
    (rule,) = load_gateway_config(path).rules
    assert (rule.model, rule.outputs) == ("reference-slide", ("slide-seg", "ann"))


@pytest.mark.peer
@pytest.mark.slow
def test_gateway_run_sends_the_slide_results_to_orthanc(orthanc, slide_folder, expected, tmp_path):
    """C-STORE a tiled slide to `radbridge gateway run`; Orthanc receives SEG and ANN."""
    port = free_port()
    config = write_config(
        tmp_path,
        port=port,
        pacs_port=orthanc.dicom_port,
        pacs_ae="ORTHANC",
        quiet=0.5,
        outputs=("slide-seg", "ann"),
        destinations=("pacs",),
        model="reference-slide",
        modality="SM",
    )
    gateway = GatewayProcess(config, port)
    try:
        target = f"RADBRIDGE@127.0.0.1:{port}"
        sent = subprocess.run(
            [sys.executable, "-m", "radbridge", "send", str(slide_folder), "--to", target],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert sent.returncode == 0, sent.stderr
        wait_until(lambda: jobs_done(tmp_path / "data"), 180, what="a done slide job")
        deliveries = query(
            tmp_path / "data" / "gateway.sqlite",
            "SELECT r.kind, d.sop_instance_uid FROM deliveries d "
            "JOIN results r USING (sop_instance_uid)",
        )
        uids = {d["sop_instance_uid"] for d in deliveries}
        wait_until(lambda: uids <= orthanc.sop_instance_uids(), 60, what="SEG and ANN in Orthanc")
    finally:
        gateway.stop()
    assert gateway.proc.returncode == 0, gateway.log_tail()
    assert sorted(d["kind"] for d in deliveries) == ["ann", "slide-seg"], deliveries
    stored = {}
    for delivery in deliveries:
        (found,) = orthanc.lookup(delivery["sop_instance_uid"])
        stored[delivery["kind"]] = tmp_path / f"{delivery['kind']}.dcm"
        stored[delivery["kind"]].write_bytes(orthanc.instance_bytes(found["ID"]))
    modalities = {pydicom.dcmread(io.BytesIO(p.read_bytes())).Modality for p in stored.values()}
    assert modalities == {"SEG", "ANN"}
    _check_objects(stored["slide-seg"], stored["ann"], expected)


def test_the_status_page_lists_a_slide_rules_outputs(config):
    """The model card names what a slide job makes (no SEG of a volume)."""
    from tests.gateway.test_web import get

    ct = config.rules[0]
    gateway = Gateway(replace(config, port=free_port(), rules=(ct, SLIDE_RULE)))
    server = gateway.stow_server().start()
    try:
        page = get(server, "/").text
    finally:
        server.stop()
        gateway.close()
    assert "rules: tissue<br>outputs: slide-seg, ann<br>" in page
    assert "rules: ct-reference<br>outputs: seg, sr, ko<br>" in page


def test_an_external_slide_model_is_refused_not_given_the_slide(
    config, slide_folder, tmp_path, monkeypatch
):
    """An external model must see de-identified inputs; slides are not de-identified."""
    (tmp_path / "outside.py").write_text(
        "class Remote:\n"
        "    name, version, external = 'remote', '1', True\n"
        "    calls = 0\n"
        "    def run_slide(self, slide, series):\n"
        "        Remote.calls += 1\n"
        "        raise AssertionError('the slide reached an external model')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    rule = replace(SLIDE_RULE, model="outside:Remote")
    gateway = Gateway(replace(config, rules=(rule,), file_mode=0o600))
    try:
        receive(gateway, _slide_files(slide_folder))
        run_until_idle(gateway)
        (job,) = jobs(gateway)
    finally:
        gateway.close()
    assert (job["state"], job["attempts"]) == (JobState.DEAD, 1)
    assert "does not do for whole-slide images" in job["error"]
    import outside

    assert outside.Remote.calls == 0


@pytest.mark.slow
def test_slide_jobs_run_on_dask_like_locally(
    config, slide_folder, expected, dask_cluster, tmp_path
):
    """A slide job on a real Dask cluster: the same objects, byte for byte, as run locally."""
    from distributed import Client

    from tests.gateway.test_dask_executor import wait_done

    local = Gateway(replace(config, rules=(SLIDE_RULE,), data_dir=tmp_path / "local"))
    remote = Gateway(
        replace(
            config,
            rules=(SLIDE_RULE,),
            data_dir=tmp_path / "remote",
            executor=dask_cluster.address.replace("tcp://", "dask://"),
        )
    )
    try:
        for gateway in (local, remote):
            receive(gateway, _slide_files(slide_folder))
            wait_done(gateway, 1)
        here, there = _outbox(local), _outbox(remote)
    finally:
        local.close()
        remote.close()
    assert set(there) == {"slide-seg", "ann"}
    assert {k: undated(p) for k, p in here.items()} == {k: undated(p) for k, p in there.items()}
    _check_objects(there["slide-seg"], there["ann"], expected)
    with Client(dask_cluster.address, timeout="30s") as client:
        prefixes = client.run_on_scheduler(
            lambda dask_scheduler: list(dask_scheduler.task_prefixes)
        )
    assert "compute_results" in prefixes  # the slide job ran on the cluster


def test_an_urgent_slide_result_alerts_the_webhook(config, slide_folder, expected):
    """A rule's threshold on the slide model's tissue area sends one signed alert."""
    import hashlib
    import hmac
    import json

    from radbridge.gateway.triage import Threshold, Urgency
    from radbridge.net import AlertTargets, WebhookTarget
    from tests.gateway.alert_receivers import HttpReceiver
    from tests.gateway.test_alerts import run_until_alerted

    result, _ = expected
    (area,) = [m.value for m in result.measurements if m.name == "area"]
    hook = HttpReceiver()
    secret = "slide-hmac-key"
    rule = replace(
        SLIDE_RULE,
        urgent=Urgency(measurements=(Threshold("area", "mm2", label="Tissue", above=0.0),)),
        alert=("pathology",),
    )
    targets = AlertTargets(webhook={"pathology": WebhookTarget(url=hook.url, secret=secret)})
    gateway = Gateway(replace(config, rules=(rule,), alerts=targets))
    try:
        receive(gateway, _slide_files(slide_folder))
        run_until_alerted(gateway)
        stored = {uid for (uid,) in query(gateway, "SELECT sop_instance_uid FROM results")}
    finally:
        gateway.close()
        hook.stop()
    (request,) = hook.requests
    signature = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-Radbridge-Signature"], "sha256=" + signature)
    payload = json.loads(request.body)
    level = read_slide(slide_folder).level(0).datasets[0]
    assert payload["series_instance_uid"] == level.SeriesInstanceUID
    assert [(r["kind"], r["concept"]) for r in payload["reasons"]] == [("measurement", "area")]
    assert payload["reasons"][0]["value"] == pytest.approx(area, abs=1e-6)  # 6 decimals
    assert {r["sop_instance_uid"] for r in payload["results"]} == stored and len(stored) == 2
