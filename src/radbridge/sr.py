"""Structured Reports, TID 1500 measurement reports (write, read, JSON): the public face.

Build a :class:`MeasurementReport` of :class:`MeasurementGroup` items and encode it
with :func:`encode_measurement_report`; read any SR with
:func:`read_structured_report` or a TID 1500 report with
:func:`read_measurement_report`; convert with :func:`report_to_json` /
:func:`report_from_json`. Key Object Selection documents are in :mod:`radbridge.ko`.
The modules behind this face (``radbridge.iods``) are private.

Examples
--------
>>> import numpy as np
>>> from radbridge import Series, Volume
>>> from radbridge.coding import Code, sct
>>> source = Series.from_volume(Volume(np.zeros((2, 4, 4)), np.eye(4), "1.2.3"))
>>> volume = Measurement(sct("118565006", "Volume"), 1520.0, Code("ml", "UCUM", "ml"))
>>> group = MeasurementGroup("liver", finding=sct("10200004", "Liver"), measurements=(volume,))
>>> ds = encode_measurement_report(MeasurementReport(groups=(group,)), source)
>>> read_measurement_report(ds).groups[0].measurements[0].value
1520.0
"""

import typing as _typing

from radbridge.iods.sr import *  # noqa: F403 - the family's public names
from radbridge.iods.sr import __all__ as __all__


def __getattr__(name: str) -> _typing.Any:
    from radbridge.iods.sr import report

    return getattr(report, name)  # the deprecated Algorithm (warns)
