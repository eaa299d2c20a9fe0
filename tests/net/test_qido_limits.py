"""A server that caps a search's matches: QIDO-RS paging, its warnings, --limit and --offset.

A real Orthanc 1.10.1 (DICOMweb plugin 1.7) with ``LimitFindResults`` cuts a QIDO-RS
search short without a word and sends nothing past its limit at any ``offset``; radbridge
listed the first matches as if they were all. A local stand-in plays a server that says
so with ``Warning: 299`` (dcm4chee-arc's behaviour), which Orthanc never does.
"""

from __future__ import annotations

import http.server
import io
import json
import logging
import threading
import urllib.parse
import warnings
from collections.abc import Iterator
from typing import ClassVar

import pydicom
import pytest
from pydicom.uid import generate_uid

from radbridge.cli import main
from radbridge.errors import ConfigError, DicomWebError
from radbridge.net import Peer, qido
from radbridge.net.dicomweb.paging import Page, additional_results, fetch_pages
from tests.peers import interop_dir

SOURCE = interop_dir() / "images" / "ct-3slice" / "01.dcm"


def _instance(study: str, series: str) -> bytes:
    ds = pydicom.dcmread(SOURCE)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def _web(orthanc) -> Peer:
    return Peer("ORTHANC", "127.0.0.1", orthanc.dicom_port, dicomweb_url=orthanc.dicomweb_url)


def _quietly(function, *args, **kwargs):
    """Call ``function``; return its result and the messages of the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = function(*args, **kwargs)
    return result, [str(w.message) for w in caught]


@pytest.mark.peer
def test_a_study_list_orthanc_cut_short_says_so(orthanc_factory):
    """Orthanc with LimitFindResults=5 sent 6 of a study's 12 series and 6 of a series'
    12 instances, with no Warning header and nothing at a further offset: qido returned
    them as the whole list. It now warns, naming Orthanc's own count."""
    pacs = orthanc_factory(extra={"LimitFindResults": 5, "LimitFindInstances": 5})
    study, series = generate_uid(), generate_uid()
    for _ in range(11):
        pacs.upload(_instance(study, generate_uid()))
    for _ in range(12):
        pacs.upload(_instance(study, series))
    peer = _web(pacs)

    found, said = _quietly(qido, peer, "SERIES", study=study)
    assert len(found) < 12  # Orthanc 1.10.1 cannot send more: the list stays short ...
    assert said == [  # ... and says so now
        f"QIDO-RS SERIES on {pacs.dicomweb_url}: {len(found)} series returned, but the "
        "server counts 12 (NumberOfStudyRelatedSeries): it cut the list short "
        "(Orthanc: LimitFindResults)"
    ]
    found, said = _quietly(qido, peer, "IMAGE", study=study, series=series)
    assert len(found) < 12 and len(said) == 1
    assert f"{len(found)} instances returned, but the server counts 12" in said[0]
    assert "NumberOfSeriesRelatedInstances" in said[0] and "LimitFindInstances" in said[0]
    found, said = _quietly(qido, peer, "IMAGE", study=study)
    assert f"{len(found)} instances returned, but the server counts 23" in said[0]
    found, said = _quietly(qido, peer, "SERIES", study=study, limit=3)
    assert len(found) == 3 and said == []  # what the caller limited is not a short list


@pytest.mark.peer
def test_a_c_find_orthanc_cut_short_fails_the_query_command(orthanc_factory, capsys):
    """The DIMSE side of the same limit: Orthanc ends the C-FIND with Cancel (0xFE00),
    which `find` already turns into an error; the command says it in one line, exit 1."""
    pacs = orthanc_factory(
        modalities={"rb": ("RADBRIDGE", "127.0.0.1", 11113)}, extra={"LimitFindResults": 5}
    )
    for _ in range(7):
        pacs.upload(_instance(generate_uid(), generate_uid()))
    assert main(["query", f"ORTHANC@127.0.0.1:{pacs.dicom_port}"]) == 1
    err = capsys.readouterr().err
    assert "stopped the search after" in err and "LimitFindResults" in err


@pytest.mark.peer
def test_query_limit_and_offset_through_the_cli(orthanc_factory, tmp_path, capsys):
    """`radbridge query` had no way to page: --limit shows the first N and says the peer
    has more, --offset the next ones (QIDO-RS); C-FIND takes --limit but not --offset."""
    pacs = orthanc_factory(modalities={"rb": ("RADBRIDGE", "127.0.0.1", 11113)})
    studies = {generate_uid() for _ in range(12)}
    for study in studies:
        pacs.upload(_instance(study, generate_uid()))
    config = tmp_path / "peers.toml"
    config.write_text(
        f'[peers.pacs]\nae_title = "ORTHANC"\nhost = "127.0.0.1"\nport = {pacs.dicom_port}\n'
        f'dicomweb_url = "{pacs.dicomweb_url}"\n'
    )
    web = ["query", "pacs", "--config", str(config), "--web"]

    def shown(args: list[str]) -> tuple[list[str], str, str]:
        capsys.readouterr()
        assert main(args) == 0
        out, err = capsys.readouterr()
        return [line for line in out.splitlines() if "StudyInstanceUID" in line], out, err

    everything, out, _ = shown(web)
    assert len(everything) == 12 and out.endswith("12 matches\n")
    pages = []
    for offset in (0, 5, 10):
        lines, out, _ = shown([*web, "--limit", "5", "--offset", str(offset)])
        pages += lines
        if offset < 10:
            assert len(lines) == 5
            assert f"5 matches shown; the peer has more (--offset {offset + 5} for the next)" in out
        else:
            assert len(lines) == 2 and out.endswith("2 matches\n")
    assert pages == everything  # the pages, in order, are the whole list
    capsys.readouterr()
    assert main([*web, "--limit", "2", "--offset", "3", "--json"]) == 0
    out, err = capsys.readouterr()
    assert [m["0020000D"]["Value"][0] for m in json.loads(out)] == [
        line.split()[0].split("=")[1] for line in everything[3:5]
    ]
    assert "the peer has more (--offset 5 for the next)" in err

    dimse = ["query", "pacs", "--config", str(config)]
    lines, out, _ = shown([*dimse, "--limit", "4"])
    assert len(lines) == 4 and "the peer has more (raise --limit for the next)" in out
    assert main([*dimse, "--offset", "3"]) == 2
    assert "C-FIND has no offset" in capsys.readouterr().err


class _CappedServer(http.server.BaseHTTPRequestHandler):
    """QIDO-RS /studies of 12 studies, at most 5 an answer, as dcm4chee-arc answers.

    Orthanc never sends a Warning header (its DICOMweb plugin has none, 1.7 to 1.24),
    hence this stand-in: past 5 it sends the first 5 with ``Warning: 299 ...: There are
    N additional results that can be requested``; ``ignore_offset`` plays a server that
    says so but answers every offset with the first page.
    """

    studies: ClassVar[list[str]] = [f"1.2.826.0.1.3680043.10.1.{n}" for n in range(12)]
    ignore_offset: ClassVar[bool] = False
    past_end: ClassVar[int] = 204  # what an offset past the last match gets
    asked: ClassVar[list[dict[str, list[str]]]] = []

    def do_GET(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        self.asked.append(query)
        offset = 0 if self.ignore_offset else int(query.get("offset", ["0"])[0])
        limit = int(query.get("limit", ["0"])[0]) or 5
        page = self.studies[offset : offset + min(limit, 5)]
        if not page and self.past_end != 204:
            self.send_error(self.past_end)
            return
        remaining = len(self.studies) - offset - len(page)
        body = json.dumps([{"0020000D": {"vr": "UI", "Value": [uid]}} for uid in page]).encode()
        self.send_response(200 if page else 204)
        if (limit > 5 or "limit" not in query) and remaining > 0:
            more = f"There are {remaining} additional results that can be requested"
            self.send_header("Warning", f'299 127.0.0.1 "{more}"')
        self.send_header("Content-Type", "application/dicom+json")
        self.send_header("Content-Length", str(len(body) if page else 0))
        self.end_headers()
        if page:
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def capped() -> Iterator[Peer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CappedServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _CappedServer.asked, _CappedServer.ignore_offset, _CappedServer.past_end = [], False, 204
    try:
        yield Peer(
            "WEB", "127.0.0.1", 1, dicomweb_url=f"http://127.0.0.1:{server.server_address[1]}"
        )
    finally:
        server.shutdown()
        server.server_close()


def test_qido_pages_to_the_end_past_a_server_maximum(capped, caplog):
    """A server that sends 5 matches an answer and a Warning 299 for the rest: qido
    returned the first 5 (dicomweb-client only logged the warning)."""
    caplog.set_level(logging.WARNING)
    found, said = _quietly(qido, capped, "STUDY")
    assert not caplog.records  # dicomweb-client's echo of the header: handled, not logged
    assert [str(d.StudyInstanceUID) for d in found] == _CappedServer.studies and said == []
    assert [q.get("offset") for q in _CappedServer.asked] == [["0"], ["5"], ["10"], ["12"]]
    found, said = _quietly(qido, capped, "STUDY", limit=7, offset=4)
    assert [str(d.StudyInstanceUID) for d in found] == _CappedServer.studies[4:11]
    assert said == []


@pytest.mark.parametrize("status", [400, 404])
def test_an_offset_past_the_end_refused_ends_the_list(capped, status):
    """PS3.18 answers 204 past the last match; a server that refuses the offset instead
    must not fail a search whose matches all came (nor a search that matches nothing)."""
    _CappedServer.past_end = status
    found, said = _quietly(qido, capped, "STUDY")
    assert len(found) == 12 and said == []
    _CappedServer.studies, saved = [], _CappedServer.studies
    try:
        with pytest.raises(DicomWebError) as caught:  # the first answer's error stays one
            qido(capped, "STUDY")
        assert caught.value.http_status == status
    finally:
        _CappedServer.studies = saved


@pytest.mark.parametrize(("name", "value"), [("limit", 0), ("offset", -1), ("offset", None)])
def test_limit_and_offset_are_checked(name, value):
    peer = Peer("WEB", "127.0.0.1", 1, dicomweb_url="http://127.0.0.1:1/dicom-web")
    with pytest.raises(ConfigError, match=f"QIDO-RS {name} must be a whole number") as caught:
        qido(peer, "STUDY", **{name: value})
    assert caught.value.attribute == name


def test_a_warning_299_that_paging_cannot_follow_is_a_warning(capped):
    """A server that says more results can be requested but answers each offset with the
    first page: the 5 were returned as all; now a warning names the 7 missing."""
    _CappedServer.ignore_offset = True
    found, said = _quietly(qido, capped, "STUDY")
    assert [str(d.StudyInstanceUID) for d in found] == _CappedServer.studies[:5]
    assert len(_CappedServer.asked) == 2  # no endless loop on the repeated page
    assert said == [
        f"QIDO-RS STUDY on {capped.dicomweb_url}: the server said 7 more matches can be "
        "requested (Warning 299) but sent the same matches again at offset 5: 5 returned"
    ]


def test_the_query_command_prints_the_warning(capped, tmp_path, capsys):
    _CappedServer.ignore_offset = True
    config = tmp_path / "peers.toml"
    config.write_text(
        f'[peers.web]\nae_title = "WEB"\nhost = "127.0.0.1"\nport = 1\n'
        f'dicomweb_url = "{capped.dicomweb_url}"\n'
    )
    assert main(["query", "web", "--config", str(config), "--web"]) == 0
    out, err = capsys.readouterr()
    assert out.endswith("5 matches\n")
    assert "warning: QIDO-RS STUDY on" in err and "the server said 7 more matches" in err


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('299 pacs:8080 "There are 12 additional results that can be requested"', (True, 12)),
        ("299 {+service}: There are additional results that can be requested.", (True, None)),
        (
            "299 svc: The number of results exceeded the maximum supported by the server. "
            "Additional results can be requested.",
            (True, None),
        ),
        ("299 svc: The fuzzymatching parameter is not supported.", (False, None)),
        ('199 host "There are 3 additional results"', (False, None)),
    ],
)
def test_warning_headers_that_promise_more(header, expected):
    assert additional_results(header) == expected


def test_paging_stops_at_the_limit_and_at_an_empty_page():
    rows = [{"00080018": {"vr": "UI", "Value": [f"1.2.{n}"]}} for n in range(7)]
    asked = []

    def server(limit, offset):
        asked.append((limit, offset))
        return Page(rows[offset : offset + min(limit or 3, 3)])

    assert len(fetch_pages(server, "00080018", limit=None, offset=0).matches) == 7
    assert asked == [(None, 0), (None, 3), (None, 6), (None, 7)]
    asked.clear()
    paged = fetch_pages(server, "00080018", limit=4, offset=2)
    assert [m["00080018"]["Value"][0] for m in paged.matches] == [
        "1.2.2",
        "1.2.3",
        "1.2.4",
        "1.2.5",
    ]
    assert asked == [(4, 2), (1, 5)]
