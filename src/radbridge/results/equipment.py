"""Contributing Equipment: the model that made a result, on every object (IHE AI Results).

Each object :func:`~radbridge.results.encode_results` returns carries one
Contributing Equipment Sequence (0018,A001) item naming the algorithm as
*Processing Equipment* (DCM 109102): its manufacturer, its name as
Manufacturer's Model Name and its version as Software Versions — how IHE AI
Results (AIR) asks an evidence creator to identify the AI model, beside the
General Equipment of the object itself (the software that wrote it).

Examples
--------
>>> from radbridge.models import AlgorithmInfo
>>> item = contributing_equipment(AlgorithmInfo("liver-unet", "2.1", manufacturer="Acme"))
>>> item.Manufacturer, item.ManufacturerModelName, item.SoftwareVersions
('Acme', 'liver-unet', '2.1')
>>> item.PurposeOfReferenceCodeSequence[0].CodeMeaning
'Processing Equipment'
"""

from __future__ import annotations

from pydicom import Dataset

from radbridge.coding import dcm
from radbridge.models import AlgorithmInfo

__all__ = ["PROCESSING_EQUIPMENT", "add_contributing_equipment", "contributing_equipment"]

#: CID 7005 "Contributing Equipment Purposes of Reference": the AI model processed the images.
PROCESSING_EQUIPMENT = dcm("109102", "Processing Equipment")


def contributing_equipment(algorithm: AlgorithmInfo) -> Dataset:
    """Return the Contributing Equipment item of ``algorithm`` (maker ``unknown`` if unset)."""
    item = Dataset()
    item.PurposeOfReferenceCodeSequence = [PROCESSING_EQUIPMENT.to_dataset()]
    item.Manufacturer = (algorithm.manufacturer or "unknown")[:64]
    item.ManufacturerModelName = algorithm.name[:64]
    item.SoftwareVersions = algorithm.version[:64]
    item.ContributionDescription = f"AI result: {algorithm.family}"[:64]
    return item


def add_contributing_equipment(ds: Dataset, algorithm: AlgorithmInfo) -> None:
    """Add the item of ``algorithm`` to ``ds``'s Contributing Equipment (once)."""
    item = contributing_equipment(algorithm)
    present = list(ds.get("ContributingEquipmentSequence", []))
    if any(existing == item for existing in present):
        return
    ds.ContributingEquipmentSequence = [*present, item]
