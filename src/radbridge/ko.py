"""Key Object Selection documents (TID 2010), key images for the radiologist: the public face.

:func:`encode_key_objects` flags instances of a series; :func:`read_key_objects`
reads a KOS back. KOS documents are SR documents: they share the SR family's
implementation (``radbridge.iods.sr``, private).

Examples
--------
>>> import tempfile
>>> from radbridge.io.phantom import write_phantom
>>> from radbridge.io.series import read_source_series
>>> study = write_phantom(tempfile.mkdtemp(), slices=3, size=16, nifti=False)
>>> source = read_source_series(study.dicom_dir)
>>> key = source.slice_refs[1].sop_instance_uid
>>> ko = encode_key_objects([key], source, description="largest lesion")
>>> read_key_objects(ko).references[0].sop_instance_uid == key
True
"""

from radbridge.iods.sr.ko import *  # noqa: F403 - the family's public names
from radbridge.iods.sr.ko import __all__ as __all__
