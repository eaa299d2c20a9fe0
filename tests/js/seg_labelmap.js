// What an OHIF user sees of a SEG: dcmjs's Cornerstone segmentation adapter
// (dcmjs.adapters.Cornerstone.Segmentation.generateToolState, the code OHIF's
// Cornerstone3D adapter builds on) places the SEG's frames on the source images.
//
//   node seg_labelmap.js SEG.dcm OUT_PREFIX SOURCE1.dcm SOURCE2.dcm ...
//
// The source files are the "stack" (imageIds), in the order given. Every source
// header is read by dcmjs itself; nothing comes from radbridge. Writes
// OUT_PREFIX.json ({labelmaps, segments, shape}) and OUT_PREFIX.<m>.u16, one
// little-endian uint16 buffer [image, row, column] per labelmap the adapter made
// (several when segments overlap). Exit code 1 with the adapter's error on stderr.
"use strict";
const fs = require("fs");
const dcmjs = require("dcmjs");

const { DicomMessage, DicomMetaDictionary } = dcmjs.data;

function readNatural(path) {
  const bytes = fs.readFileSync(path);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const parsed = DicomMessage.readFile(buffer);
  const dataset = DicomMetaDictionary.naturalizeDataset(parsed.dict);
  return { buffer, dataset };
}

function numbers(value) {
  return (Array.isArray(value) ? value : [value]).map(Number);
}

function metadataProvider(headers) {
  return {
    get(type, imageId) {
      const ds = headers[imageId];
      if (ds === undefined) {
        return undefined;
      }
      const iop = numbers(ds.ImageOrientationPatient);
      switch (type) {
        case "imagePlaneModule":
          return {
            rowCosines: iop.slice(0, 3),
            columnCosines: iop.slice(3, 6),
            imagePositionPatient: numbers(ds.ImagePositionPatient),
            frameOfReferenceUID: ds.FrameOfReferenceUID,
            rows: ds.Rows,
            columns: ds.Columns,
          };
        case "generalSeriesModule":
          return {
            seriesInstanceUID: ds.SeriesInstanceUID,
            studyInstanceUID: ds.StudyInstanceUID,
            modality: ds.Modality,
          };
        case "sopCommonModule":
          return { sopInstanceUID: ds.SOPInstanceUID, sopClassUID: ds.SOPClassUID };
        case "imagePixelModule":
          return { rows: ds.Rows, columns: ds.Columns };
        case "instance":
          return {
            ...ds,
            ImagePositionPatient: numbers(ds.ImagePositionPatient),
          };
        default:
          return undefined;
      }
    },
  };
}

function main(argv) {
  if (argv.length < 3) {
    process.stderr.write("usage: node seg_labelmap.js SEG OUT_PREFIX SOURCE...\n");
    process.exit(2);
  }
  const [segPath, outPrefix, ...sources] = argv;
  const headers = {};
  for (const path of sources) {
    headers[path] = readNatural(path).dataset;
  }
  const seg = readNatural(segPath);
  const result = dcmjs.adapters.Cornerstone.Segmentation.generateToolState(
    sources,
    seg.buffer,
    metadataProvider(headers)
  );
  if (!result || !result.labelmapBufferArray) {
    throw new Error("the adapter returned no labelmap");
  }
  const first = headers[sources[0]];
  result.labelmapBufferArray.forEach((buffer, m) => {
    fs.writeFileSync(`${outPrefix}.${m}.u16`, Buffer.from(buffer));
  });
  const segments = Object.entries(result.segMetadata.data || {})
    .filter(([, s]) => s)
    .map(([index, s]) => ({ index: Number(index), label: s.SegmentLabel }));
  const summary = {
    labelmaps: result.labelmapBufferArray.length,
    shape: [sources.length, first.Rows, first.Columns],
    segments,
  };
  fs.writeFileSync(`${outPrefix}.json`, JSON.stringify(summary));
}

try {
  main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`dcmjs: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
}
