"""The object families behind the public faces (private: import ``radbridge.seg`` etc.).

Families (``seg``, ``pm``, ``sr`` with KOS, ``rtstruct``, ``sc``) sit side by side on a
shared layer (``multiframe``, ``content``, ``source``, ``common``, ``profiles``,
``threshold``) and never import each other; ``convert`` joins two families from above.
See docs/architecture.md.
"""
