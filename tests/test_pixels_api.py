"""The public surface of radbridge.pixels: small, documented, and every name resolves."""

from __future__ import annotations

import inspect

import radbridge.pixels as pixels


def test_all_names_resolve_and_are_documented():
    assert len(pixels.__all__) == len(set(pixels.__all__))
    for name in pixels.__all__:
        item = getattr(pixels, name)
        doc = inspect.getdoc(item) or ""
        assert doc, name
        if inspect.isfunction(item) or inspect.isclass(item):
            assert "Examples" in doc, name


def test_no_private_module_leaks_into_the_namespace():
    public = {n for n in dir(pixels) if not n.startswith("_")}
    modules = {
        "bits",
        "codecs",
        "encode",
        "fragments",
        "frame_format",
        "parallel",
        "reader",
        "rle",
        "syntax",
    }
    assert public - modules == set(pixels.__all__)
