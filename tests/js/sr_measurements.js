// What an OHIF user sees of a TID 1500 SR: dcmjs's Cornerstone3D measurement-report
// adapter (dcmjs.adapters.Cornerstone3D.MeasurementReport.generateToolState) walks
// the report (template 1500 -> Imaging Measurements -> Measurement Group -> Tracking
// Identifier) and hands each group to a tool class. OHIF's tool classes (Length,
// Bidirectional, ...) read annotations drawn in OHIF; this script registers one
// reader class that collects each group's numeric measurements as dcmjs parsed them.
//
//   node sr_measurements.js SR.dcm OUT.json
//
// OUT.json: {"groups": [{"trackingIdentifier", "trackingUid", "measurements":
// [{"concept": {value, scheme, meaning}, "value": <number>, "text": <DS as stored>,
// "unit": {value, scheme, meaning}}]}]}. Exit code 1 with the error on stderr.
"use strict";
const fs = require("fs");
const dcmjs = require("dcmjs");

const { DicomMessage, DicomMetaDictionary } = dcmjs.data;
const { MeasurementReport } = dcmjs.adapters.Cornerstone3D;

function list(value) {
  if (value === undefined || value === null) {
    return [];
  }
  return Array.isArray(value) ? value : [value];
}

function code(sequence) {
  const item = list(sequence)[0];
  if (!item) {
    return null;
  }
  return { value: item.CodeValue, scheme: item.CodingSchemeDesignator, meaning: item.CodeMeaning };
}

function textOf(items, meaning) {
  const item = items.find((i) => code(i.ConceptNameCodeSequence)?.meaning === meaning);
  return item ? item.TextValue || item.UID || null : null;
}

const NumericReader = {
  toolType: "RadbridgeNumeric",
  utilityToolType: "RadbridgeNumeric",
  isValidCornerstoneTrackingIdentifier: () => true,
  getMeasurementData(group) {
    const items = list(group.ContentSequence);
    const measurements = items
      .filter((i) => i.ValueType === "NUM")
      .map((i) => {
        const measured = list(i.MeasuredValueSequence)[0] || {};
        const raw = list(measured.NumericValue)[0];
        return {
          concept: code(i.ConceptNameCodeSequence),
          value: Number(raw),
          text: String(raw),
          unit: code(measured.MeasurementUnitsCodeSequence),
        };
      });
    return {
      trackingIdentifier: textOf(items, "Tracking Identifier"),
      trackingUid: textOf(items, "Tracking Unique Identifier"),
      measurements,
    };
  },
};

function main(argv) {
  if (argv.length !== 2) {
    process.stderr.write("usage: node sr_measurements.js SR OUT.json\n");
    process.exit(2);
  }
  const bytes = fs.readFileSync(argv[0]);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const parsed = DicomMessage.readFile(buffer);
  const dataset = DicomMetaDictionary.naturalizeDataset(parsed.dict);
  MeasurementReport.registerTool(NumericReader);
  const log = console.log;
  console.log = () => {}; // the adapter prints every measurement
  let state;
  try {
    state = MeasurementReport.generateToolState(dataset, {}, null, null, {
      getToolClass: () => NumericReader,
    });
  } finally {
    console.log = log;
  }
  fs.writeFileSync(argv[1], JSON.stringify({ groups: state[NumericReader.toolType] || [] }));
}

try {
  main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`dcmjs: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
}
