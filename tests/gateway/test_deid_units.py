"""De-identification pieces: profile, mapping, re-identification, store, config, model cards."""

from __future__ import annotations

import copy
import json
import os
import sqlite3
from dataclasses import replace

import numpy as np
import pytest

from radbridge.errors import ConfigError, GatewayError
from radbridge.gateway import GatewayConfig
from radbridge.gateway.config import load_gateway_config
from radbridge.gateway.deid import REMOVED, map_uids, new_seed, pseudonymise, reidentify
from radbridge.gateway.runner import deidentifies
from radbridge.gateway.store import SCHEMA_VERSION, Store
from radbridge.io.series import load_datasets
from radbridge.iods.source import Series
from radbridge.models import AlgorithmInfo, ModelResult
from radbridge.models.onnx import ModelCard
from radbridge.results import encode_results

from .conftest import BEFORE_RETENTION


@pytest.fixture(scope="module")
def headers(phantom_study):
    datasets = load_datasets(sorted(phantom_study.dicom_dir.glob("*.dcm"))[:6])
    for ds in datasets:
        ds.StudyDescription = "CT for Jane Doe"
        ds.PatientAge = "063Y"
        ds.ImageComments = "called Mrs Doe"
        ds.add_new(0x00091010, "LO", "private note")
        ds.InstitutionName = "St Elsewhere"
    return datasets


def test_the_profile_removes_replaces_and_marks(headers):
    pseudonyms = map_uids(headers, new_seed())
    seen = pseudonymise(copy.deepcopy(headers), pseudonyms)
    for before, after in zip(headers, seen, strict=True):
        assert str(after.PatientName) != str(before.PatientName)
        assert after.PatientID != before.PatientID
        assert after.PatientBirthDate != before.PatientBirthDate
        assert after.StudyDate != before.StudyDate
        assert after.InstitutionName != "St Elsewhere"
        assert not any(keyword in after for keyword in REMOVED)
        assert not [e for e in after if e.tag.is_private]
        assert after.PatientIdentityRemoved == "YES"
        assert {c.CodeValue for c in after.DeidentificationMethodCodeSequence} == {
            "113100",
            "113107",
        }
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            assert pseudonyms.uids[str(before[keyword].value)] == str(after[keyword].value)
        assert after.SOPClassUID == before.SOPClassUID
    assert len({str(s.SeriesInstanceUID) for s in seen}) == 1  # still one series
    again = pseudonymise(copy.deepcopy(headers), pseudonyms)  # the same seed, the same pseudonyms
    assert [s.SOPInstanceUID for s in again] == [s.SOPInstanceUID for s in seen]


def test_a_mapping_of_other_inputs_and_burned_in_text_are_refused(headers):
    other = map_uids(headers[:2], new_seed())
    with pytest.raises(GatewayError, match="not in the stored mapping"):
        pseudonymise(copy.deepcopy(headers), other)
    burned = copy.deepcopy(headers[:1])
    burned[0].BurnedInAnnotation = "YES"
    with pytest.raises(GatewayError, match="burned-in annotation"):
        pseudonymise(burned, map_uids(headers[:1], new_seed()))


def test_a_result_made_on_the_copy_goes_back_to_the_original_study(phantom_study):
    datasets = load_datasets(sorted(phantom_study.dicom_dir.glob("*.dcm")))
    context = copy.deepcopy(Series.from_datasets(datasets).context)
    pseudonyms = map_uids(datasets, new_seed())
    seen = Series.from_datasets(pseudonymise(copy.deepcopy(datasets), pseudonyms))
    labels = np.zeros(seen.geometry.shape, np.uint8)
    labels[3:6, 40:50, 40:50] = 1
    result = ModelResult(
        labels=seen.volume(rescale=True).with_array(labels),
        segments={1: "liver"},
        algorithm=AlgorithmInfo("demo", "1"),
    )
    objects = encode_results(seen, result, ["seg", "ko", "sr"])
    originals = {str(ds.SOPInstanceUID) for ds in datasets}
    for ds in objects.values():
        reidentify(ds, pseudonyms, context)
        assert ds.StudyInstanceUID == datasets[0].StudyInstanceUID
        assert str(ds.PatientName) == str(datasets[0].PatientName)
        assert ds.PatientBirthDate == datasets[0].PatientBirthDate
    seg = objects["seg"]
    assert seg.FrameOfReferenceUID == datasets[0].FrameOfReferenceUID
    referenced = {
        str(r.ReferencedSOPInstanceUID)
        for s in seg.ReferencedSeriesSequence
        for r in s.ReferencedInstanceSequence
    }
    assert referenced and referenced <= originals
    broken = copy.deepcopy(objects["ko"])  # a pseudonym in a text, where no UID is mapped
    broken.SeriesDescription = pseudonyms.uids[str(datasets[0].SOPInstanceUID)]
    with pytest.raises(GatewayError, match="left in a re-identified result"):
        reidentify(broken, pseudonyms, context)


def test_the_store_keeps_the_first_mapping_and_only_in_a_private_file(tmp_path):
    path = tmp_path / "gateway.sqlite"
    path.touch(mode=0o600)
    os.chmod(path, 0o600)
    store = Store(path)
    assert store.pseudonyms("1.2.3", 1) is None
    kept = store.save_pseudonyms("1.2.3", 1, "seed-a", {"1.2": "2.9"})
    assert kept == ("seed-a", {"1.2": "2.9"})
    assert store.save_pseudonyms("1.2.3", 1, "seed-b", {"1.2": "2.7"}) == kept  # first wins
    os.chmod(path, 0o640)
    with pytest.raises(GatewayError, match="readable by others"):
        store.save_pseudonyms("1.2.3", 2, "seed-c", {})
    store.close()


def test_a_schema_3_database_gains_the_pseudonym_tables(tmp_path):
    path = tmp_path / "old.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as old:  # what a schema-3 gateway left behind
        old.executescript(
            BEFORE_RETENTION
            + "DROP TABLE deid_seeds; DROP TABLE deid_uids; ALTER TABLE series DROP COLUMN holds;"
            "PRAGMA user_version = 3;"
            "INSERT INTO transfers VALUES ('t', 1, 1, NULL, NULL, 0);"
        )
    os.chmod(path, 0o600)
    store = Store(path)
    assert store.save_pseudonyms("1.2.3", 1, "s", {"1": "2"})[0] == "s"
    store.close()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 8
        assert check.execute("SELECT COUNT(*) FROM transfers").fetchone()[0] == 1


def test_config_deidentify_needs_a_private_database(tmp_path):
    text = """
[gateway]
file_mode = 0o640
[[rules]]
name = "ct"
model = "reference-ct"
deidentify = true
"""
    (tmp_path / "g.toml").write_text(text)
    with pytest.raises(ConfigError, match="readable by others"):
        load_gateway_config(tmp_path / "g.toml")
    (tmp_path / "g.toml").write_text(text.replace("0o640", "0o600"))
    config = load_gateway_config(tmp_path / "g.toml")
    assert config.rules[0].deidentify is True
    assert deidentifies(config.rules[0], None)
    assert not deidentifies(GatewayConfig.default(tmp_path).rules[0], None)


def test_a_model_card_marks_a_model_external_and_names_its_maker(tmp_path):
    (tmp_path / "net.onnx").write_bytes(b"")
    card = {"name": "cloud-seg", "version": "3", "file": "net.onnx", "labels": {"1": "liver"}}
    (tmp_path / "plain.json").write_text(json.dumps(card))
    (tmp_path / "cloud.json").write_text(
        json.dumps({**card, "external": True, "manufacturer": "Acme AI"})
    )
    plain, cloud = ModelCard.load(tmp_path / "plain.json"), ModelCard.load(tmp_path / "cloud.json")
    assert (plain.external, plain.manufacturer) == (False, "")
    assert (cloud.external, cloud.manufacturer) == (True, "Acme AI")
    rule = GatewayConfig.default(tmp_path).rules[0]
    assert deidentifies(replace(rule, model=str(tmp_path / "cloud.json")), None)
    assert not deidentifies(replace(rule, model=str(tmp_path / "plain.json")), None)
    (tmp_path / "bad.json").write_text(json.dumps({**card, "external": "yes"}))
    with pytest.raises(ConfigError, match="external must be true or false"):
        ModelCard.load(tmp_path / "bad.json")


class _External:
    """A model that says it sends data outside (never run: refused before)."""

    external = True


def test_a_model_only_the_workers_can_import_is_checked_there_fail_closed(tmp_path):
    """On Dask the gateway may not import the model; the worker refuses it if external."""
    from radbridge.gateway.runner import PermanentJobError, refuse_unprotected

    rule = replace(GatewayConfig.default(tmp_path).rules[0], model="nowhere_module:Model")
    with pytest.raises(ConfigError):
        deidentifies(rule, None)  # a local run must import it
    assert not deidentifies(rule, None, remote=True)  # the worker will ask the model
    with pytest.raises(PermanentJobError, match="marked external") as caught:
        refuse_unprotected(_External(), rule, None)
    assert caught.value.hint is not None and "deidentify = true" in caught.value.hint
    refuse_unprotected(object(), rule, None)  # a model that is not external runs


# PS3.15 Table E.1-1, Basic Profile: (tag, action) of attributes dicognito keeps unchanged
# (found by filling them with marked values); each must not reach the model.
BASIC_PROFILE_LEFT_BY_DICOGNITO = {
    (0x0008, 0x0092): "X",  # Referring Physician's Address
    (0x0008, 0x0094): "X",  # Referring Physician's Telephone Numbers
    (0x0010, 0x2203): "X/Z",  # Patient's Sex Neutered
    (0x0012, 0x0010): "D",  # Clinical Trial Sponsor Name
    (0x0012, 0x0021): "Z",  # Clinical Trial Protocol Name
    (0x0012, 0x0031): "Z",  # Clinical Trial Site Name
    (0x0012, 0x0040): "D",  # Clinical Trial Subject ID
    (0x0012, 0x0042): "D",  # Clinical Trial Subject Reading ID
    (0x0018, 0x1004): "X",  # Plate ID
    (0x0018, 0x1007): "X",  # Cassette ID
    (0x0018, 0x1008): "X",  # Gantry ID
    (0x0018, 0x1030): "X/D",  # Protocol Name
    (0x0018, 0x1400): "X/D",  # Acquisition Device Processing Description
    (0x0018, 0x700A): "X/D",  # Detector ID
    (0x0020, 0x9158): "X",  # Frame Comments
    (0x0028, 0x4000): "X",  # Image Presentation Comments
    (0x0032, 0x0012): "X",  # Study ID Issuer
    (0x0038, 0x0010): "X",  # Admission ID
    (0x0038, 0x001E): "X",  # Scheduled Patient Institution Residence
    (0x0038, 0x0040): "X",  # Discharge Diagnosis Description
    (0x0038, 0x0050): "X",  # Special Needs
    (0x0038, 0x0062): "X",  # Service Episode Description
    (0x0038, 0x0400): "X",  # Patient's Institution Residence
    (0x0038, 0x0500): "X",  # Patient State
    (0x0038, 0x4000): "X",  # Visit Comments
    (0x0040, 0x0007): "X",  # Scheduled Procedure Step Description
    (0x0040, 0x0010): "X",  # Scheduled Station Name
    (0x0040, 0x0242): "X",  # Performed Station Name
    (0x0040, 0x0243): "X",  # Performed Location
    (0x0040, 0x0280): "X",  # Comments on the Performed Procedure Step
    (0x0040, 0x1002): "X",  # Reason for the Requested Procedure
    (0x0040, 0x1004): "X",  # Patient Transport Arrangements
    (0x0040, 0x2009): "X",  # Order Enterer's Location
    (0x0040, 0x2010): "X",  # Order Callback Phone Number
    (0x0040, 0xA730): "D",  # Content Sequence
    (0x4008, 0x011A): "X",  # Distribution Address
    (0x4008, 0x4000): "X",  # Results Comments
}


def test_the_basic_profile_attributes_dicognito_keeps_do_not_reach_the_model(headers):
    from pydicom.datadict import dictionary_VR
    from pydicom.dataset import Dataset

    marked = copy.deepcopy(headers[:1])
    for group, element in BASIC_PROFILE_LEFT_BY_DICOGNITO:
        tag = (group << 16) | element
        vr = dictionary_VR(tag)
        if vr == "SQ":
            item = Dataset()
            item.TextValue = "Jane Doe, MRN 123"
            marked[0].add_new(tag, vr, [item])
        else:
            marked[0].add_new(tag, vr, "PHI" if vr in ("SH", "CS", "AE") else "Jane Doe 12")
    before = copy.deepcopy(marked[0])
    (seen,) = pseudonymise(marked, map_uids(marked, new_seed()))
    left = {
        f"({g:04X},{e:04X})": action
        for (g, e), action in BASIC_PROFILE_LEFT_BY_DICOGNITO.items()
        if (g << 16) | e in seen and seen[(g << 16) | e].value == before[(g << 16) | e].value
    }
    assert left == {}
