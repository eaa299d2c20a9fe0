"""A model's result as DICOM objects: :func:`encode_results` and the output-kind registry.

``encode_results(series, result, outputs, options)`` encodes a
:class:`~radbridge.models.ModelResult` on its source :class:`~radbridge.Series` as the requested
output kinds — ``seg``, ``sr``, ``ko``, ``sc``, ``pm``, ``rtstruct``, ``gsps`` — with the
segment descriptions resolved once for all of them; on a whole-slide image
(:class:`radbridge.wsi.Slide`) the kinds ``slide-seg`` and ``ann``. The gateway, ``radbridge
batch`` and the CLI's encode commands use it. Adding an output kind is one module
and one registration (see :mod:`radbridge.results.registry`); docs/results.md
shows both.
"""

import typing as _typing

from radbridge import _lazy

#: Public name -> module that defines it. Loaded on first use, so ``radbridge seg
#: encode`` imports the SEG output alone, not every family's writer (nor SciPy, which
#: the SR output's planar measurements need).
_HOMES: dict[str, str] = {
    "AnnOutput": "radbridge.results.ann",
    "GspsOutput": "radbridge.results.gsps",
    "KoOutput": "radbridge.results.ko",
    "Output": "radbridge.results.registry",
    "OutputKind": "radbridge.results.registry",
    "PmOutput": "radbridge.results.pm",
    "ResultContext": "radbridge.results.registry",
    "ResultOptions": "radbridge.results.registry",
    "RtstructOutput": "radbridge.results.rtstruct",
    "ScOutput": "radbridge.results.sc",
    "SegOutput": "radbridge.results.seg",
    "SlideSegOutput": "radbridge.results.slide_seg",
    "SrOutput": "radbridge.results.sr",
    "encode_results": "radbridge.results.registry",
    "output_kind": "radbridge.results.registry",
    "output_kinds": "radbridge.results.registry",
    "register_output": "radbridge.results.registry",
}

__all__ = [
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
]

if _typing.TYPE_CHECKING:
    from radbridge.results.ann import AnnOutput
    from radbridge.results.gsps import GspsOutput
    from radbridge.results.ko import KoOutput
    from radbridge.results.pm import PmOutput
    from radbridge.results.registry import (
        Output,
        OutputKind,
        ResultContext,
        ResultOptions,
        encode_results,
        output_kind,
        output_kinds,
        register_output,
    )
    from radbridge.results.rtstruct import RtstructOutput
    from radbridge.results.sc import ScOutput
    from radbridge.results.seg import SegOutput
    from radbridge.results.slide_seg import SlideSegOutput
    from radbridge.results.sr import SrOutput


__getattr__, __dir__ = _lazy.lazy(__name__, _HOMES, globals())
