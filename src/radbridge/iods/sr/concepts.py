"""Coded concepts used by radbridge's TID 1500 and TID 2010 documents (PS3.16).

Each constant was checked against pydicom's copy of the DICOM code dictionary
(``pydicom.sr.codedict.codes``); ``tests/sr`` checks them again.

Examples
--------
>>> IMAGING_MEASUREMENT_REPORT.value, IMAGING_MEASUREMENT_REPORT.scheme
('126000', 'DCM')
"""

from __future__ import annotations

from radbridge.coding import Code, dcm, sct

__all__ = [
    "ABSENT",
    "ALGORITHM_NAME",
    "ALGORITHM_VERSION",
    "CENTER_OF_MASS",
    "DERIVATION",
    "DEVICE",
    "DEVICE_OBSERVER_MANUFACTURER",
    "DEVICE_OBSERVER_MODEL_NAME",
    "DEVICE_OBSERVER_NAME",
    "DEVICE_OBSERVER_SERIAL_NUMBER",
    "DEVICE_OBSERVER_UID",
    "ENGLISH_US",
    "FINDING",
    "FINDING_CATEGORY",
    "FINDING_SITE",
    "FOR_REFERRING_PROVIDER",
    "IMAGE_LIBRARY",
    "IMAGE_LIBRARY_GROUP",
    "IMAGE_REGION",
    "IMAGING_MEASUREMENTS",
    "IMAGING_MEASUREMENT_REPORT",
    "IMAGING_PROCEDURE",
    "KEY_OBJECT_DESCRIPTION",
    "LANGUAGE",
    "LATERALITY",
    "LONGITUDINAL_TEMPORAL_OFFSET",
    "MEASUREMENT_GROUP",
    "MEASUREMENT_METHOD",
    "OBSERVER_TYPE",
    "OF_INTEREST",
    "ORIGINAL_SOURCE",
    "PATIENT",
    "PERSON",
    "PERSON_OBSERVER_NAME",
    "PRESENT",
    "PRIORITY",
    "PROBABILITY",
    "PROCEDURE_REPORTED",
    "QUALITATIVE_EVALUATIONS",
    "REFERENCED_SEGMENT",
    "REFERENCED_SEGMENTATION_FRAME",
    "SOURCE_IMAGE_FOR_SEGMENTATION",
    "SOURCE_SERIES_FOR_SEGMENTATION",
    "SUBJECT_CLASS",
    "SUBJECT_TIME_POINT_IDENTIFIER",
    "TIME_POINT",
    "TRACKING_IDENTIFIER",
    "TRACKING_UID",
    "URGENT",
    "VOLUME_SURFACE",
]

IMAGING_MEASUREMENT_REPORT = dcm("126000", "Imaging Measurement Report")
LANGUAGE = dcm("121049", "Language of Content Item and Descendants")
ENGLISH_US = Code("en-US", "RFC5646", "English (United States)")
OBSERVER_TYPE = dcm("121005", "Observer Type")
DEVICE = dcm("121007", "Device")
PERSON = dcm("121006", "Person")
PERSON_OBSERVER_NAME = dcm("121008", "Person Observer Name")
DEVICE_OBSERVER_UID = dcm("121012", "Device Observer UID")
DEVICE_OBSERVER_NAME = dcm("121013", "Device Observer Name")
DEVICE_OBSERVER_MANUFACTURER = dcm("121014", "Device Observer Manufacturer")
DEVICE_OBSERVER_MODEL_NAME = dcm("121015", "Device Observer Model Name")
DEVICE_OBSERVER_SERIAL_NUMBER = dcm("121016", "Device Observer Serial Number")
PROCEDURE_REPORTED = dcm("121058", "Procedure reported")
IMAGING_PROCEDURE = sct("363679005", "Imaging procedure")
IMAGE_LIBRARY = dcm("111028", "Image Library")
IMAGE_LIBRARY_GROUP = dcm("126200", "Image Library Group")
IMAGING_MEASUREMENTS = dcm("126010", "Imaging Measurements")
MEASUREMENT_GROUP = dcm("125007", "Measurement Group")
TRACKING_IDENTIFIER = dcm("112039", "Tracking Identifier")
TRACKING_UID = dcm("112040", "Tracking Unique Identifier")
FINDING = dcm("121071", "Finding")
FINDING_CATEGORY = sct("276214006", "Finding category")
FINDING_SITE = sct("363698007", "Finding Site")
LATERALITY = sct("272741003", "Laterality")
MEASUREMENT_METHOD = sct("370129005", "Measurement Method")
DERIVATION = dcm("121401", "Derivation")
ALGORITHM_NAME = dcm("111001", "Algorithm Name")
ALGORITHM_VERSION = dcm("111003", "Algorithm Version")
IMAGE_REGION = dcm("111030", "Image Region")
VOLUME_SURFACE = dcm("121231", "Volume Surface")
ORIGINAL_SOURCE = dcm("111040", "Original Source")
REFERENCED_SEGMENT = dcm("121191", "Referenced Segment")
SOURCE_SERIES_FOR_SEGMENTATION = dcm("121232", "Source series for segmentation")
SOURCE_IMAGE_FOR_SEGMENTATION = dcm("121233", "Source image for segmentation")
REFERENCED_SEGMENTATION_FRAME = dcm("121214", "Referenced Segmentation Frame")
SUBJECT_CLASS = dcm("121024", "Subject Class")
PATIENT = dcm("121025", "Patient")
PRESENT = dcm("121053", "Present")
ABSENT = dcm("121054", "Absent")
PROBABILITY = dcm("122157", "Probability")
OF_INTEREST = dcm("113000", "Of Interest")
FOR_REFERRING_PROVIDER = dcm("113002", "For Referring Provider")
# TID 1500 row 12: report-level qualitative evaluations; an urgent result says so there
QUALITATIVE_EVALUATIONS = Code("C0034375", "UMLS", "Qualitative Evaluations")
PRIORITY = sct("260870009", "Priority")
URGENT = sct("103391001", "Urgent")
KEY_OBJECT_DESCRIPTION = dcm("113012", "Key Object Description")
# TID 1502 Time Point Context ("Time Point" is UMLS C2348792 there, as highdicom writes it).
TIME_POINT = Code("C2348792", "UMLS", "Time Point")
SUBJECT_TIME_POINT_IDENTIFIER = dcm("126070", "Subject Time Point Identifier")
LONGITUDINAL_TEMPORAL_OFFSET = dcm("128740", "Longitudinal Temporal Offset from Event")
CENTER_OF_MASS = dcm("128138", "Center of Mass")  # CID 219
