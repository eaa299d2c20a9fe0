// Write a TID 1500 SR as OHIF does: dcmjs's Cornerstone3D measurement-report adapter
// (dcmjs.adapters.Cornerstone3D.MeasurementReport.generateReport) turns Length and
// Bidirectional annotations into measurement groups whose NUMs each carry the
// SCOORD POLYLINE they were measured on (INFERRED FROM, SELECTED FROM the image).
//
//   node sr_write_measurements.js IN.json OUT.dcm
//
// IN.json: {"images": {IMAGE_ID: {"sopInstanceUID", "sopClassUID", "studyInstanceUID",
// "seriesInstanceUID"}}, "tools": [{"type": "Length" | "Bidirectional", "imageId",
// "points": [[column, row], ...], "length": mm, "width": mm}]}. The points are image
// coordinates; they go through the adapter's worldToImageCoords unchanged.
// Exit code 1 with the error on stderr.
"use strict";
const fs = require("fs");
const dcmjs = require("dcmjs");

const { MeasurementReport } = dcmjs.adapters.Cornerstone3D;

function toolState(input) {
  const state = {};
  for (const tool of input.tools) {
    const imageState = (state[tool.imageId] = state[tool.imageId] || {});
    const typeState = (imageState[tool.type] = imageState[tool.type] || { data: [] });
    typeState.data.push({
      data: {
        handles: { points: tool.points.map(([x, y]) => [x, y, 0]) },
        cachedStats: { [`imageId:${tool.imageId}`]: { length: tool.length, width: tool.width } },
      },
      metadata: { referencedImageId: tool.imageId, toolName: tool.type },
      findingSites: [],
    });
  }
  return state;
}

function metadataProvider(images) {
  return {
    get(type, imageId) {
      const image = images[imageId];
      if (type === "sopCommonModule") {
        return { sopInstanceUID: image.sopInstanceUID, sopClassUID: image.sopClassUID };
      }
      if (type === "generalSeriesModule") {
        return {
          studyInstanceUID: image.studyInstanceUID,
          seriesInstanceUID: image.seriesInstanceUID,
        };
      }
      if (type === "instance") {
        return { NumberOfFrames: 1 };
      }
      return undefined;
    },
  };
}

function main(argv) {
  if (argv.length !== 2) {
    process.stderr.write("usage: node sr_write_measurements.js IN.json OUT.dcm\n");
    process.exit(2);
  }
  const input = JSON.parse(fs.readFileSync(argv[0], "utf8"));
  const worldToImageCoords = (imageId, point) => [point[0], point[1]];
  const report = MeasurementReport.generateReport(
    toolState(input),
    metadataProvider(input.images),
    worldToImageCoords,
  );
  fs.writeFileSync(argv[1], dcmjs.data.datasetToBuffer(report.dataset));
}

try {
  main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`dcmjs: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
}
