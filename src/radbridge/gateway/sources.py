"""Which series a rule can run on: radiology images or whole-slide images.

A rule's ``outputs`` say what its model makes: radiology kinds (``seg``, ``sr``,
...) encode on a volume, slide kinds (``slide-seg``, ``ann``) on a VL Whole Slide
Microscopy series. :func:`check_rule_source` refuses, when the configuration is
loaded, a rule that could never run: slide and radiology outputs mixed, outputs of
one source with a ``match`` that admits only the other, or a slide rule that asks
for what radbridge does not do on slides (de-identification, a LABELMAP SEG). What
cannot be known then (a rule without such conditions meeting a series of the other
source) is refused when the job runs (:func:`refuse_other_source`), which
dead-letters it with the reason.

Examples
--------
>>> from radbridge.gateway.routing import Match, Rule
>>> check_rule_source(Rule("slides", "reference-slide", outputs=("slide-seg", "ann")))
>>> bad = Rule("bad", "reference-slide", match=Match(modality=("SM",)))
>>> check_rule_source(bad)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
radbridge.errors.ConfigError: rule 'bad' matches only slide microscopy ... Use slide-seg, ann.
"""

from __future__ import annotations

from collections.abc import Sequence

from radbridge.errors import ConfigError
from radbridge.gateway.routing import Match, Rule
from radbridge.results import output_kind, output_kinds
from radbridge.wsi import VL_WHOLE_SLIDE_MICROSCOPY_IMAGE_STORAGE

__all__ = ["check_rule_source", "is_slide", "refuse_other_source", "rule_source"]

_SLIDE_MODALITY = "SM"


def is_slide(sop_class_uid: str) -> bool:
    """Tell whether a series of this SOP class goes the slide path."""
    return sop_class_uid == VL_WHOLE_SLIDE_MICROSCOPY_IMAGE_STORAGE


def rule_source(rule: Rule) -> str:
    """Return ``"slide"`` when the rule's outputs are slide kinds, else ``"series"``."""
    sources = {output_kind(kind).source for kind in rule.outputs}
    return "slide" if sources == {"slide"} else "series"


def _slides_only(match: Match) -> bool:
    modalities = {m.upper() for m in match.modality}
    return bool(modalities and modalities <= {_SLIDE_MODALITY}) or bool(
        match.sop_class_uid and all(is_slide(uid) for uid in match.sop_class_uid)
    )


def _no_slides(match: Match) -> bool:
    modalities = {m.upper() for m in match.modality}
    return bool(modalities and _SLIDE_MODALITY not in modalities) or bool(
        match.sop_class_uid and not any(is_slide(uid) for uid in match.sop_class_uid)
    )


def check_rule_source(rule: Rule) -> None:
    """Refuse a rule whose outputs can never be made on the series it matches.

    Raises
    ------
    ConfigError
        Slide and radiology outputs mixed; outputs of one source with a match that
        admits only the other; a slide rule with ``deidentify`` or a ``seg_type``
        other than binary/fractional.
    """
    slide = [kind for kind in rule.outputs if output_kind(kind).source == "slide"]
    series = [kind for kind in rule.outputs if kind not in slide]
    if slide and series:
        _refuse(
            rule,
            f"mixes slide outputs {slide} with radiology outputs {series}",
            "a series is either a whole-slide image or radiology images: make one rule each",
        )
    if not slide:
        if _slides_only(rule.match):
            _refuse(
                rule,
                "matches only slide microscopy (modality SM or its SOP class) but asks for "
                f"radiology outputs {series}",
                "use " + ", ".join(output_kinds(source="slide")),
            )
        return
    if _no_slides(rule.match):
        _refuse(
            rule,
            f"asks for slide outputs {slide} but matches no slide microscopy series",
            "match modality SM (or leave modality and sop_class_uid out)",
        )
    if rule.deidentify:
        _refuse(
            rule,
            "de-identifies, which radbridge does not do for whole-slide images",
            "de-identify slides before they reach the gateway and set deidentify = false",
            attribute="deidentify",
        )
    if rule.seg_type not in ("binary", "fractional"):
        _refuse(
            rule,
            f"asks for a {rule.seg_type} SEG, which slides cannot have",
            "use seg_type = 'binary' or 'fractional'",
            attribute="seg_type",
        )


def _refuse(rule: Rule, what: str, hint: str, attribute: str = "outputs") -> None:
    raise ConfigError(f"rule {rule.name!r} {what}", attribute=attribute, hint=hint)


def refuse_other_source(rule: Rule, sop_class_uid: str, kinds: Sequence[str]) -> str | None:
    """Return why the rule cannot run on a series of this SOP class (None: it can)."""
    if is_slide(sop_class_uid) == (rule_source(rule) == "slide"):
        return None
    if is_slide(sop_class_uid):
        return (
            f"rule {rule.name!r} asks for radiology outputs {list(kinds)} on a whole-slide "
            "image (VL Whole Slide Microscopy); a slide rule uses "
            + ", ".join(output_kinds(source="slide"))
        )
    return (
        f"rule {rule.name!r} asks for slide outputs {list(kinds)} on a series that is no "
        "whole-slide image; match it to modality SM"
    )
