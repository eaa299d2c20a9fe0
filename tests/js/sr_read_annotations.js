// What OHIF draws from a TID 1500 SR: dcmjs's Cornerstone3D measurement-report adapter
// (MeasurementReport.generateToolState) rebuilds Length and Bidirectional annotations
// from each measurement's SCOORD (its handles) and NUM (its cached length/width).
//
//   node sr_read_annotations.js SR.dcm OUT.json
//
// OUT.json: {"Length": [{"sopInstanceUid", "points": [[column, row], ...], "length"}],
// "Bidirectional": [{..., "width"}]}. imageToWorldCoords keeps image coordinates, so
// the points are the SCOORD's. Exit code 1 with the error on stderr.
"use strict";
const fs = require("fs");
const dcmjs = require("dcmjs");

const { DicomMessage, DicomMetaDictionary } = dcmjs.data;
const { MeasurementReport } = dcmjs.adapters.Cornerstone3D;

function main(argv) {
  if (argv.length !== 2) {
    process.stderr.write("usage: node sr_read_annotations.js SR OUT.json\n");
    process.exit(2);
  }
  const bytes = fs.readFileSync(argv[0]);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const dataset = DicomMetaDictionary.naturalizeDataset(DicomMessage.readFile(buffer).dict);
  // image ids are the SOP Instance UIDs themselves
  const imageIds = new Proxy({}, { get: (_, uid) => uid });
  const metadata = { get: () => ({ frameOfReferenceUID: "1.2.3" }) };
  const imageToWorldCoords = (imageId, point) => [point[0], point[1], 0];
  const log = console.log;
  console.log = () => {};
  let state;
  try {
    state = MeasurementReport.generateToolState(dataset, imageIds, imageToWorldCoords, metadata);
  } finally {
    console.log = log;
  }
  const out = {};
  for (const [toolType, annotations] of Object.entries(state)) {
    out[toolType] = annotations.map((a) => {
      const imageId = a.annotation.metadata.referencedImageId;
      const stats = a.annotation.data.cachedStats[`imageId:${imageId}`] || {};
      return {
        sopInstanceUid: a.sopInstanceUid,
        points: a.annotation.data.handles.points.map((p) => [p[0], p[1]]),
        length: Number(stats.length),
        width: stats.width === undefined ? null : Number(stats.width),
      };
    });
  }
  fs.writeFileSync(argv[1], JSON.stringify(out));
}

try {
  main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`dcmjs: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
}
