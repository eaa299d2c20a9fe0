r"""Alerts as HL7 v2.5 ORU^R01 over MLLP, the acknowledgement checked.

:func:`oru_message` builds the message with hl7apy at strict validation (the
v2.5 ORU_R01 structure and its segments): an ``OBR`` for the study (filler order
number = Study Instance UID, universal service LOINC 18748-4, result status
``P`` preliminary) and one ``OBX`` per reason (``NM`` with UCUM units for a
measurement, ``CE`` for a coded finding, ``ST`` for the model's flag; abnormal
flag ``AA`` critically abnormal), after an ``OBX`` holding the Study Instance
UID. Times carry their UTC offset (``+0000``); numbers are plain decimals (an
HL7 ``NM`` has no exponent). A ``PID`` (patient ID, name as an ``XPN`` from the
DICOM name's alphabetic group, birth date, sex) and the accession number
(``OBR-2``) are written only for a destination with ``patient_identifiers =
true``. The message control ID (``MSH-10``) is the first 20 hex digits of the
SHA-256 of the alert's idempotency key: a re-send carries the same ID.

:func:`send_hl7` frames the message for MLLP (``0x0B`` ... ``0x1C 0x0D``), over TLS
when the destination has a ``tls`` table (a failed handshake or certificate check
is a temporary failure, like no connection), waits
for the acknowledgement and checks it: ``MSA-1`` ``AA``/``CA`` with ``MSA-2``
equal to the control ID is success; ``AE``, ``AR``, ``CE``, ``CR`` (a NACK), no
answer or an unreadable one raise a temporary :class:`~radbridge.errors.SendError`
(the gateway retries with backoff, then dead-letters with the reason).

Examples
--------
>>> from radbridge.net.alerts.message import AlertMessage, AlertReason
>>> message = AlertMessage("2.25.7", "ct", "m", 1, "1.2", "1.2.3",
...                        (AlertReason("measurement", "volume", 12.5, unit="mL"),),
...                        "2026-01-01T00:00:00Z")
>>> er7 = oru_message(message, Hl7Target(host="127.0.0.1", port=2575))
>>> [segment[:3] for segment in er7.split("\r")]
['MSH', 'OBR', 'OBX', 'OBX']
>>> er7.split("\r")[3].split("|")[5:9]
['12.5', 'mL^mL^UCUM', '', 'AA']
"""

from __future__ import annotations

import hashlib
import socket
import ssl
from datetime import datetime
from decimal import Decimal
from typing import Any

from radbridge._optional import require
from radbridge.coding import Code
from radbridge.net.alerts.message import AlertMessage, AlertPatient, AlertReason
from radbridge.net.alerts.posting import alert_error
from radbridge.net.alerts.settings import Hl7Target

__all__ = ["control_id", "oru_message", "send_hl7"]

START, END = b"\x0b", b"\x1c\x0d"
_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"))
_ACCEPTED = ("AA", "CA")


def _text(value: str) -> str:
    """Escape HL7 delimiters in free text."""
    for char, escape in _ESCAPES:
        value = value.replace(char, escape)
    return value.replace("\r", " ").replace("\n", " ")


def _coded(code: Code | None, text: str) -> str:
    if code is None or code.scheme.startswith("99"):
        return "^" + _text(text)
    return f"{_text(code.value)}^{_text(code.meaning or text)}^{_text(code.scheme)}"


def _stamp(created: str) -> str:
    """``2026-01-01T00:00:00Z`` -> ``20260101000000+0000``.

    The offset is written: an HL7 time without one is the sender's local time.
    """
    try:
        moment = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return "".join(ch for ch in created if ch.isdigit())[:14]
    offset = "" if moment.tzinfo is None else moment.strftime("%z")
    return moment.strftime("%Y%m%d%H%M%S") + offset


def _number(value: float) -> str:
    """Return ``value`` as an HL7 NM: plain decimal digits, never an exponent."""
    text = format(Decimal(repr(float(value))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _person_name(name: str) -> str:
    """Return a DICOM PN as an HL7 XPN (family^given^further given^suffix^prefix).

    Only the alphabetic component group (before the first ``=``) is used; DICOM's
    prefix and suffix (components 4 and 5) are XPN's 5 and 4.
    """
    parts = [*name.split("=")[0].split("^")[:5], "", "", "", "", ""][:5]
    family, given, middle, prefix, suffix = (_text(part) for part in parts)
    return "^".join((family, given, middle, suffix, prefix)).rstrip("^")


def control_id(message: AlertMessage) -> str:
    """Return MSH-10 of ``message``: 20 hex digits of the SHA-256 of its key."""
    return hashlib.sha256(message.key.encode()).hexdigest()[:20]


def _msh(msg: Any, message: AlertMessage, target: Hl7Target) -> None:
    msh = msg.msh
    msh.msh_3 = _text(target.sending_application)
    msh.msh_4 = _text(target.sending_facility)
    msh.msh_5 = _text(target.receiving_application)
    msh.msh_6 = _text(target.receiving_facility)
    msh.msh_7 = _stamp(message.created)
    msh.msh_9 = "ORU^R01^ORU_R01"
    msh.msh_10 = control_id(message)
    msh.msh_11 = target.processing_id
    msh.msh_12 = "2.5"
    msh.msh_18 = "UNICODE UTF-8"


def _pid(result: Any, patient: AlertPatient) -> None:
    pid = result.add_group("ORU_R01_PATIENT").pid
    pid.pid_3 = _text(patient.patient_id) + (
        f"^^^{_text(patient.issuer_of_patient_id)}" if patient.issuer_of_patient_id else ""
    )
    pid.pid_5 = _person_name(patient.name) or '""'
    if patient.birth_date:
        pid.pid_7 = _text(patient.birth_date)
    if patient.sex:
        pid.pid_8 = _text(patient.sex)


def _obx(
    group: Any,
    number: int,
    kind: str,
    concept: str,
    value: str,
    *,
    units: str = "",
    sub_id: str = "",
) -> None:
    obx = group.add_group("ORU_R01_OBSERVATION").obx
    obx.obx_1 = str(number)
    obx.obx_2 = kind
    obx.obx_3 = concept
    if sub_id:
        obx.obx_4 = sub_id
    obx.obx_5 = value
    if units:
        obx.obx_6 = units
    if number > 1:
        obx.obx_8 = "AA"
    obx.obx_11 = "P"


def _reason_obx(group: Any, number: int, reason: AlertReason) -> None:
    label = _text(reason.label)
    if reason.kind == "measurement":
        unit = _text(reason.unit)
        units = f"{unit}^{unit}^UCUM" if unit else ""
        concept = _coded(reason.concept_code, reason.concept)
        _obx(group, number, "NM", concept, _number(float(reason.value)), units=units, sub_id=label)
    elif reason.kind == "finding":
        value = _coded(reason.value_code, str(reason.value))
        _obx(group, number, "CE", _coded(reason.concept_code, reason.concept), value, sub_id=label)
    else:
        _obx(group, number, "ST", "^Model urgency flag", _text(reason.text), sub_id=label)


def oru_message(message: AlertMessage, target: Hl7Target) -> str:
    r"""Return the alert as an ER7-encoded ORU^R01 (segments separated by ``\r``).

    Raises
    ------
    OptionalDependencyError
        hl7apy is not installed (``pip install 'radbridge[alerts]'``).
    """
    core = require("hl7apy.core", "alerts", purpose="build HL7 alerts")
    consts = require("hl7apy.consts", "alerts", purpose="build HL7 alerts")
    msg = core.Message("ORU_R01", version="2.5", validation_level=consts.VALIDATION_LEVEL.STRICT)
    _msh(msg, message, target)
    result = msg.add_group("ORU_R01_PATIENT_RESULT")
    patient = message.patient if target.patient_identifiers else None
    if patient is not None:
        _pid(result, patient)
    order = result.add_group("ORU_R01_ORDER_OBSERVATION")
    obr = order.obr
    obr.obr_1 = "1"
    if patient is not None and patient.accession_number:
        obr.obr_2 = _text(patient.accession_number)
    obr.obr_3 = _text(message.study_instance_uid)
    obr.obr_4 = "18748-4^Diagnostic imaging study^LN"
    obr.obr_7 = _stamp(message.created)
    obr.obr_25 = "P"
    _obx(order, 1, "ST", "113014^Study Instance UID^DCM", _text(message.study_instance_uid))
    for number, reason in enumerate(message.reasons, start=2):
        _reason_obx(order, number, reason)
    msg.validate()
    return str(msg.to_er7())


def _connect(target: Hl7Target) -> socket.socket:
    plain = socket.create_connection((target.host, target.port), timeout=target.timeout_s)
    plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if target.tls is None:
        return plain
    try:
        context = target.tls.client_context()
        return context.wrap_socket(plain, server_hostname=target.host)
    except BaseException:
        plain.close()
        raise


def _exchange(target: Hl7Target, data: bytes) -> bytes:
    where = f"{target.host}:{target.port}"
    try:
        with _connect(target) as s:
            s.sendall(START + data + END)
            answer = b""
            while END not in answer:
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
    except ssl.SSLError as exc:
        raise alert_error(
            f"TLS with the receiver failed ({type(exc).__name__}: {exc.reason})",
            url=where,
            permanent=False,
            hint="check the destination's tls table: ca_file, cert_file, key_file",
        ) from None
    except OSError as exc:
        raise alert_error(
            f"no acknowledgement ({type(exc).__name__})", url=where, permanent=False
        ) from None
    start, end = answer.find(START), answer.find(END)
    if start < 0 or end < start:
        raise alert_error("the answer is not an MLLP frame", url=where, permanent=False)
    return answer[start + 1 : end]


def _acknowledgement(ack: bytes, expected_id: str, where: str) -> str:
    parser = require("hl7apy.parser", "alerts", purpose="read HL7 acknowledgements")
    try:
        parsed = parser.parse_message(ack.decode("utf-8", "replace"), find_groups=False)
        code = str(parsed.msa.msa_1.value)
        acknowledged = str(parsed.msa.msa_2.value)
    except Exception:  # hl7apy raises several unrelated types for a malformed answer
        raise alert_error(
            "the acknowledgement cannot be read", url=where, permanent=False
        ) from None
    if code not in _ACCEPTED:
        raise alert_error(
            f"negative acknowledgement {code}",
            url=where,
            permanent=False,
            hint="the receiver refused the ORU^R01; it is sent again after a backoff",
        )
    if acknowledged != expected_id:
        raise alert_error(
            f"the acknowledgement is for message {acknowledged!r}", url=where, permanent=False
        )
    return code


def send_hl7(target: Hl7Target, message: AlertMessage) -> str:
    """Send the ORU^R01 over MLLP and check the ACK; return ``"ACK AA"``.

    Raises
    ------
    SendError
        No connection, no answer, a NACK (``AE``/``AR``/``CE``/``CR``) or an ACK
        for another message (all temporary: retried).
    """
    er7 = oru_message(message, target)
    answer = _exchange(target, er7.encode("utf-8"))
    return "ACK " + _acknowledgement(answer, control_id(message), f"{target.host}:{target.port}")
