"""The gateway's TOML schema: the documented block loads, every key is documented and
accepted, unknown keys get the closest name, wrong types and incomplete credentials fail."""

from __future__ import annotations

import dataclasses
import re
import shutil
import tomllib
from pathlib import Path

import pytest

from radbridge.cli import main
from radbridge.errors import ConfigError
from radbridge.gateway import GatewayConfig, load_gateway_config
from radbridge.gateway.routing import Match, PriorityRule, Rule
from radbridge.gateway.triage import Threshold, Urgency
from radbridge.net import (
    AlertTargets,
    FhirTarget,
    Hl7Target,
    Peer,
    StowAuth,
    StowLimits,
    TLSConfig,
    WebhookTarget,
)
from radbridge.schema import table_keys
from tests.net.helpers import make_certificates
from tests.peers import REPO_ROOT

DOCS = REPO_ROOT / "docs"


def toml_block(markdown: Path, first_line: str) -> str:
    """Return the ```toml block of ``markdown`` whose first line is ``first_line``."""
    blocks = re.findall(r"```toml\n(.*?)```", markdown.read_text(), re.DOTALL)
    (block,) = [b for b in blocks if b.startswith(first_line + "\n")]
    return block


@pytest.fixture
def secrets(monkeypatch):
    monkeypatch.setenv("RADBRIDGE_STOW_PASSWORD", "pw-from-env")
    monkeypatch.setenv("RADBRIDGE_STOW_TOKEN", "token-from-env")
    monkeypatch.setenv("PACS_PASSWORD", "pacs-pw")


def load(tmp_path, text, name="gateway.toml"):
    path = tmp_path / name
    path.write_text(text)
    return load_gateway_config(path)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """Test certificates (tests/net/helpers.make_certificates): TLS files are read at load."""
    return make_certificates(tmp_path_factory.mktemp("certs"))


def test_the_documented_block_loads(tmp_path, secrets, certs):
    for name, source in {
        "hospital-ca.pem": "ca.pem",
        "gateway.pem": "server.pem",
        "gateway.key": "server.key",
    }.items():
        shutil.copyfile(certs / source, tmp_path / name)
    config = load(tmp_path, toml_block(DOCS / "gateway.md", "[gateway]"))
    assert config.data_dir == tmp_path / "radbridge-data"
    assert (config.host, config.port, config.executor) == ("127.0.0.1", 11112, "local")
    assert config.file_mode == 0o600 and config.dir_mode == 0o700
    assert config.tls == TLSConfig(
        ca_file=tmp_path / "hospital-ca.pem",
        cert_file=tmp_path / "gateway.pem",
        key_file=tmp_path / "gateway.key",
    )
    assert config.stow == StowLimits()  # the documented values are the defaults
    assert config.stow_auth == StowAuth("pacs", "pw-from-env", "token-from-env")
    (rule,) = config.rules
    assert rule.match.sop_class_uid == ("1.2.840.10008.5.1.4.1.1.2",)
    assert rule.destinations == ("archive", "pacs")
    assert config.priorities[0].study_priority == ("STAT", "HIGH")
    assert config.peers["pacs"].port == 4242


def keys_of(cls, prefix):
    """Every TOML key of dataclass ``cls`` and its nested tables, as dotted names."""
    found = set()
    for key, item in table_keys(cls).items():
        kind = str(item.type)
        nested = {"TLSConfig": TLSConfig, "StowLimits": StowLimits, "StowAuth": StowAuth}
        nested |= {"Match": Match, "Urgency": Urgency, "Threshold": Threshold}
        inner = next((c for name, c in nested.items() if name in kind), None)
        if inner is not None:
            found |= keys_of(inner, f"{prefix}{key}.")
        else:
            found.add(prefix + key)
    return found


def schema_keys():
    return (
        keys_of(GatewayConfig, "gateway.") - {"gateway.tls.check_hostname"}  # client side only
        | keys_of(Rule, "rules.")
        | keys_of(PriorityRule, "priorities.")
        | keys_of(Peer, "peers.")
        | keys_of(WebhookTarget, "alerts.webhook.")
        | keys_of(FhirTarget, "alerts.fhir.")
        | keys_of(Hl7Target, "alerts.hl7.")
    )


def document_keys(document, prefix=""):
    found = set()
    for key, value in document.items():
        if not prefix and key == "peers":  # a peer's name is not a key
            for table in value.values():
                found |= document_keys(table, "peers.")
            continue
        if not prefix and key == "alerts":  # nor is an alert destination's
            for kind, tables in value.items():
                for table in tables.values():
                    found |= document_keys(table, f"alerts.{kind}.")
            continue
        if isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                found |= document_keys(item, f"{prefix}{key}.")
            continue
        if isinstance(value, dict):
            found |= document_keys(value, f"{prefix}{key}.")
        else:
            found.add(prefix + key)
    return found


def test_every_key_is_documented():
    gateway = tomllib.loads(toml_block(DOCS / "gateway.md", "[gateway]"))
    peers = tomllib.loads(toml_block(DOCS / "networking.md", "[peers.pacs]"))
    triage = tomllib.loads(toml_block(DOCS / "triage.md", "[[rules]]"))
    documented = document_keys(gateway) | document_keys(peers) | document_keys(triage)
    assert schema_keys() - documented == set()
    assert documented - schema_keys() == set()


EVERY_KEY = """
[gateway]
data_dir = "elsewhere"
ae_title = "AI-NODE"
host = "0.0.0.0"
port = 104
allowed_calling_aets = ["PACS", "CT1"]
max_associations = 3
network_timeout_s = 7
tls_handshake_timeout_s = 2.5
quiet_period_s = 1
incomplete_after_s = 30
verify_count_with = "pacs"
workers = 3
max_attempts = 9
retry_base_s = 0.5
min_free_disk_mb = 1024
spool_retention_h = 24
poll_s = 0.05
executor = "dask://127.0.0.1:8786"
stow_port = 8080
delivery_attempts = 2
alert_attempts = 3
file_mode = 0o640

[gateway.tls]
cert_file = "/etc/rb/gw.pem"
key_file = "gw.key"
ca_file = "ca.pem"

[gateway.stow]
max_request_mb = 10
max_part_mb = 5.5
request_timeout_s = 30
idle_timeout_s = 4
keep_alive_s = 3
max_concurrent_requests = 2

[gateway.stow_auth]
username = "modality"
password_env = "RADBRIDGE_STOW_PASSWORD"
token_env = "RADBRIDGE_STOW_TOKEN"

[[rules]]
name = "mr"
model = "pkg.mod:model"
priority = 5
outputs = "seg"
seg_type = "labelmap"
destinations = ["pacs"]
profile = "slicer"
anatomy = "brain"
on_incomplete = "run"
deidentify = false  # true needs file_mode = 0o600 (test_deid_units.py sets it)
compare_with_prior = false  # true needs the "sr" output
prior_from = "pacs"
alert = ["hook", "ris"]
[rules.urgent]
findings = "bleed: present"
model_flag = true
measurements = [
    { measurement = "volume", label = "bleed", above = 10, unit = "mL" },
    { measurement = "long axis", at_least = 6, unit = "mm" },
]
[rules.match]
modality = "MR"
body_part = "HEAD"
series_description = "T1"
study_description = "BRAIN"
sop_class_uid = ["1.2.3"]
min_slices = 2
max_slices = 9
max_slice_thickness_mm = 1.5
orientation = "sagittal"
exclude_localizers = false

[[priorities]]
priority = 7
study_description = "A"
series_description = "B"
study_priority = ["STAT"]

[peers.pacs]
ae_title = "PACS"
host = "10.1.2.3"
port = 11112
timeout_s = 5
dicomweb_url = "https://pacs/dicom-web"
username = "rb"
password_env = "PACS_PASSWORD"
token_env = "RADBRIDGE_STOW_TOKEN"
transport = "dicomweb"
[peers.pacs.tls]
ca_file = "pacs-ca.pem"
cert_file = "me.pem"
key_file = "me.key"
check_hostname = true

[alerts.webhook.hook]
url = "https://hooks.example/rb"
secret_env = "RADBRIDGE_STOW_TOKEN"
timeout_s = 3
patient_identifiers = true

[alerts.fhir.fhir]
url = "https://fhir.example/r4"
token_env = "RADBRIDGE_STOW_TOKEN"
timeout_s = 4
patient_identifiers = true
patient_system = "urn:oid:1.2.3"

[alerts.hl7.ris]
host = "ris"
port = 2575
timeout_s = 5
patient_identifiers = true
sending_application = "AI"
sending_facility = "RAD"
receiving_application = "RIS"
receiving_facility = "HOSP"
processing_id = "T"
[alerts.hl7.ris.tls]  # read when the configuration loads: test_every_key_set writes them
ca_file = "hl7/ca.pem"
cert_file = "hl7/client.pem"
key_file = "hl7/client.key"
check_hostname = true
"""


def test_every_key_set(tmp_path, secrets, certs):
    assert document_keys(tomllib.loads(EVERY_KEY)) == schema_keys()  # a new key: add it here
    (tmp_path / "hl7").mkdir()
    hl7 = make_certificates(tmp_path / "hl7")
    elsewhere = tmp_path / "etc" / "gw.pem"  # stands for the absolute /etc/rb/gw.pem
    elsewhere.parent.mkdir()
    shutil.copyfile(certs / "server.pem", elsewhere)
    for name, source in {
        "gw.key": "server.key",
        "ca.pem": "ca.pem",
        "pacs-ca.pem": "ca.pem",
        "me.pem": "client.pem",
        "me.key": "client.key",
    }.items():
        shutil.copyfile(certs / source, tmp_path / name)
    config = load(tmp_path, EVERY_KEY.replace("/etc/rb/gw.pem", str(elsewhere)))
    assert config == GatewayConfig(
        data_dir=tmp_path / "elsewhere",
        ae_title="AI-NODE",
        host="0.0.0.0",
        port=104,
        allowed_calling_aets=("PACS", "CT1"),
        max_associations=3,
        network_timeout_s=7.0,
        tls_handshake_timeout_s=2.5,
        quiet_period_s=1.0,
        incomplete_after_s=30.0,
        verify_count_with="pacs",
        workers=3,
        max_attempts=9,
        retry_base_s=0.5,
        min_free_disk_mb=1024.0,
        spool_retention_h=24.0,
        poll_s=0.05,
        executor="dask://127.0.0.1:8786",
        stow_port=8080,
        delivery_attempts=2,
        alert_attempts=3,
        file_mode=0o640,
        tls=TLSConfig(
            ca_file=tmp_path / "ca.pem",
            cert_file=elsewhere,
            key_file=tmp_path / "gw.key",
        ),
        stow=StowLimits(10.0, 5.5, 30.0, 4.0, 3.0, 2),
        stow_auth=StowAuth("modality", "pw-from-env", "token-from-env"),
        rules=(
            Rule(
                "mr",
                model="pkg.mod:model",
                priority=5,
                outputs=("seg",),
                seg_type="labelmap",
                destinations=("pacs",),
                profile="slicer",
                anatomy="brain",
                on_incomplete="run",
                alert=("hook", "ris"),
                urgent=Urgency(
                    findings=("bleed: present",),
                    model_flag=True,
                    measurements=(
                        Threshold("volume", "mL", label="bleed", above=10.0),
                        Threshold("long axis", "mm", at_least=6.0),
                    ),
                ),
                deidentify=False,
                prior_from="pacs",
                match=Match(
                    modality=("MR",),
                    body_part="HEAD",
                    series_description="T1",
                    study_description="BRAIN",
                    sop_class_uid=("1.2.3",),
                    min_slices=2,
                    max_slices=9,
                    max_slice_thickness_mm=1.5,
                    orientation="sagittal",
                    exclude_localizers=False,
                ),
            ),
        ),
        priorities=(PriorityRule(7, "A", "B", ("STAT",)),),
        peers={
            "pacs": Peer(
                "PACS",
                "10.1.2.3",
                11112,
                name="pacs",
                timeout_s=5.0,
                dicomweb_url="https://pacs/dicom-web",
                username="rb",
                password="pacs-pw",
                token="token-from-env",
                tls=TLSConfig(
                    tmp_path / "pacs-ca.pem", tmp_path / "me.pem", tmp_path / "me.key", True
                ),
                transport="dicomweb",
            )
        },
        alerts=AlertTargets(
            webhook={
                "hook": WebhookTarget(
                    url="https://hooks.example/rb",
                    secret="token-from-env",
                    timeout_s=3.0,
                    patient_identifiers=True,
                    name="hook",
                )
            },
            fhir={
                "fhir": FhirTarget(
                    url="https://fhir.example/r4",
                    token="token-from-env",
                    timeout_s=4.0,
                    patient_identifiers=True,
                    patient_system="urn:oid:1.2.3",
                    name="fhir",
                )
            },
            hl7={
                "ris": Hl7Target(
                    host="ris",
                    port=2575,
                    timeout_s=5.0,
                    patient_identifiers=True,
                    sending_application="AI",
                    sending_facility="RAD",
                    receiving_application="RIS",
                    receiving_facility="HOSP",
                    processing_id="T",
                    tls=TLSConfig(
                        ca_file=hl7 / "ca.pem",
                        cert_file=hl7 / "client.pem",
                        key_file=hl7 / "client.key",
                        check_hostname=True,
                    ),
                    name="ris",
                )
            },
        ),
    )
    assert config.dir_mode == 0o750


TLS_TABLES = {
    "gateway.tls": "[gateway.tls]\n",
    "peers.pacs.tls": '[peers.pacs]\nae_title = "PACS"\nhost = "h"\nport = 104\n[peers.pacs.tls]\n',
}


@pytest.mark.parametrize("table", TLS_TABLES)
@pytest.mark.parametrize(
    ("files", "attribute", "message"),
    [
        ({"ca_file": "nowhere.pem"}, ".ca_file", r"nowhere\.pem is not a file"),
        ({"cert_file": "server.pem", "key_file": "client.key"}, "", "cannot be used"),
        ({"ca_file": "garbage.pem", "cert_file": "server.pem"}, "", "cannot be used"),
    ],
    ids=["missing", "key-of-another-certificate", "not-pem"],
)
def test_tls_files_are_read_when_the_configuration_loads(
    tmp_path, certs, table, files, attribute, message
):
    """DIMSE peers and the gateway's own TLS fail at start, not at the first association."""
    (tmp_path / "garbage.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
    lines = "".join(
        f'{key} = "{certs / name if name in ("server.pem", "client.key") else tmp_path / name}"\n'
        for key, name in files.items()
    )
    if table == "gateway.tls" and "cert_file" not in files:
        lines += f'cert_file = "{certs / "server.pem"}"\nkey_file = "{certs / "server.key"}"\n'
    with pytest.raises(ConfigError, match=message) as caught:
        load(tmp_path, TLS_TABLES[table] + lines)
    assert caught.value.attribute == table + attribute


def test_a_gateway_tls_table_without_a_certificate_fails_when_it_loads(tmp_path, certs):
    with pytest.raises(ConfigError, match="needs its own certificate") as caught:
        load(tmp_path, f'[gateway.tls]\nca_file = "{certs / "ca.pem"}"\n')
    assert caught.value.attribute == "gateway.tls.cert_file"


@pytest.mark.parametrize(
    ("text", "attribute", "suggestion"),
    [
        ('[gateway]\nexector = "local"\n', "gateway.exector", "'executor'"),
        ("[gateway.stow]\nmax_request = 5\n", "gateway.stow.max_request", "'max_request_mb'"),
        ('[gateway.tls]\ncert = "a.pem"\n', "gateway.tls.cert", "'cert_file'"),
        ('[[rule]]\nmodel = "m"\n', "the file's top level.rule", "'rules'"),
        (
            '[[rules]]\nmodel = "m"\n[rules.match]\nmodalities = ["CT"]\n',
            "modalities",
            "'modality'",
        ),
        (
            '[peers.p]\nae_title = "P"\nhost = "h"\nport = 1\npasword_env = "X"\n',
            "",
            "'password_env'",
        ),
    ],
)
def test_unknown_keys_name_the_closest_key(tmp_path, text, attribute, suggestion):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text)
    assert err.value.attribute.endswith(attribute)
    assert f"did you mean {suggestion}" in str(err.value).lower()
    assert str(tmp_path / "gateway.toml") in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[gateway.tls]\ncheck_hostname = true\n", "a server does not check names"),
        ('[gateway]\nport = "11112"\n', "gateway.port must be an integer, not a string"),
        ("[gateway]\nallowed_calling_aets = 5\n", "must be an array of a string"),
        ("[gateway]\nstow = 5\n", "[gateway.stow] must be a table"),
        ("[gateway]\nfile_mode = 600\n", "Write it in octal"),
        ("[gateway]\nfile_mode = 0o400\n", "owner read/write"),
        ('[gateway]\nexecutor = "ray://x"\n', "unknown executor"),
        ('[gateway]\nhost = ""\n', "host is empty"),
        ("[gateway.stow]\nmax_part_mb = 0\n", "max_part_mb must be positive"),
        ("[[rules]]\nname = 'x'\n", "[rules[0]] has no model"),
        ("[[rules]]\nmodel = 'm'\n[rules.match]\norientation = 'up'\n", "unknown orientation"),
        ("[[rules]]\nmodel = 'm'\nprofile = 'osirix'\n", "unknown profile 'osirix'"),
        ("[peers.p]\nae_title = 'P'\nport = 1\n", "[peers.p] has no host"),
        ("[peers.p]\nae_title='P'\nhost='h'\nport=1\ntransport='ftp'\n", "unknown transport"),
    ],
)
def test_wrong_values_are_named(tmp_path, text, message):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('username = "pacs"\n', "a user name without a password"),
        ('password_env = "RB_SET"\n', "a password without a user name"),
        ('username = "pacs"\npassword_env = "RB_UNSET"\n', "RB_UNSET is not set"),
        ('token_env = "RB_UNSET"\n', "RB_UNSET is not set"),
        ("", "no credentials"),
    ],
)
def test_incomplete_stow_credentials_refuse_to_start(tmp_path, monkeypatch, table, message):
    monkeypatch.setenv("RB_SET", "x")
    monkeypatch.delenv("RB_UNSET", raising=False)
    path = tmp_path / "gateway.toml"
    path.write_text("[gateway.stow_auth]\n" + table)
    with pytest.raises(ConfigError, match=message):
        load_gateway_config(path)
    # the command refuses to start: error on stderr, exit 1, nothing created
    assert main(["gateway", "run", "--config", str(path)]) == 1
    assert not (tmp_path / "radbridge-data").exists()


def test_schema_defaults_are_the_dataclass_defaults(tmp_path):
    config = load(tmp_path, "")
    defaults = GatewayConfig()
    for item in dataclasses.fields(GatewayConfig):
        if item.name not in ("data_dir", "rules"):
            assert getattr(config, item.name) == getattr(defaults, item.name), item.name
    assert config.rules == GatewayConfig.default(tmp_path).rules  # the embedded CT rule
    named = load(tmp_path, '[[rules]]\nmodel = "a"\n[[rules]]\nmodel = "b"\n')
    assert [r.name for r in named.rules] == ["rule1", "rule2"]
