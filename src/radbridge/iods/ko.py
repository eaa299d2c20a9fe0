"""The old location of Key Object Selection: use :mod:`radbridge.ko`.

KOS documents are part of the SR family (``radbridge.iods.sr.ko``); this module
keeps ``from radbridge.iods.ko import ...`` working.
"""

from radbridge.ko import (
    KEY_OBJECT_SELECTION_STORAGE,
    KeyObjectReference,
    KeyObjects,
    encode_key_objects,
    read_key_objects,
)

__all__ = ["KEY_OBJECT_SELECTION_STORAGE", "KeyObjects", "encode_key_objects"]
__all__ += ["KeyObjectReference", "read_key_objects"]
