// What an OHIF 3.13 user sees of a SEG: the Cornerstone3D segmentation adapter
// (@cornerstonejs/adapters 5.6.8, the version @ohif/extension-cornerstone-dicom-seg
// 3.13.2 pins) places the SEG's frames on the source images and builds one labelmap
// image per source image, as OHIF does before it shows a segmentation.
//
//   node seg_cornerstone3d.mjs SEG.dcm OUT_PREFIX SOURCE1.dcm SOURCE2.dcm ...
//
// The source files are the stack (referencedImageIds), in the order given. Their
// metadata comes from Cornerstone's own parser (@cornerstonejs/metadata's default
// providers, fed each file with addDicomPart10Instance); one provider on top adds
// what OHIF's MetadataProvider puts in generalImageModule (sopInstanceUID,
// instanceNumber), without which the adapter cannot follow a frame's Derivation
// Image reference and falls back to matching positions.
//
// The call is createLabelmapsFromDICOMBuffer with OHIF's options (tolerance 0.001,
// parserType "labelmap" for the Label Map SEG SOP class, else "bitmap"). It runs the
// same placement code as OHIF's createFromDicomSegImageId; only the frame decoding
// differs: OHIF decodes each SEG frame with @cornerstonejs/dicom-image-loader, the
// buffer entry point with the adapter's own decoder (native, deflated, RLE).
//
// Writes OUT_PREFIX.json ({groups, shape, segments, overlapping}) and
// OUT_PREFIX.<m>.u8, one uint8 buffer [image, row, column] per labelmap group (more
// than one when segments overlap). Exit code 1 with the adapter's error on stderr.
import fs from "node:fs";
import * as core from "@cornerstonejs/core";
import * as metadata from "@cornerstonejs/metadata";
import { adaptersSEG } from "@cornerstonejs/adapters";
import { ohifGeneralImageModule } from "./ohif_metadata.mjs";

const LABELMAP_SEG = "1.2.840.10008.5.1.4.1.1.66.7";

function arrayBuffer(path) {
  const bytes = fs.readFileSync(path);
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
}

async function main(argv) {
  if (argv.length < 3) {
    process.stderr.write("usage: node seg_cornerstone3d.mjs SEG OUT_PREFIX SOURCE...\n");
    process.exit(2);
  }
  const [segPath, outPrefix, ...sources] = argv;
  metadata.registerDefaultProviders();
  core.metaData.addProvider(ohifGeneralImageModule(core.metaData), 10000);
  const imageIds = sources.map((_, index) => `dicomfile:${index}`);
  for (const [index, path] of sources.entries()) {
    await metadata.utilities.addDicomPart10Instance(imageIds[index], arrayBuffer(path));
  }
  const segBuffer = arrayBuffer(segPath);
  await metadata.utilities.addDicomPart10Instance("dicomfile:seg", segBuffer);
  const sopClass = core.metaData.get("instance", "dicomfile:seg").SOPClassUID;
  const result = await adaptersSEG.Cornerstone3D.Segmentation.createLabelmapsFromDICOMBuffer(
    imageIds,
    segBuffer,
    core.metaData,
    { tolerance: 0.001, parserType: sopClass === LABELMAP_SEG ? "labelmap" : "bitmap" }
  );
  const plane = core.metaData.get("imagePlaneModule", imageIds[0]);
  const slice = plane.rows * plane.columns;
  result.labelMapImages.forEach((images, m) => {
    const out = new Uint8Array(imageIds.length * slice);
    for (const image of images) {
      const index = imageIds.indexOf(image.referencedImageId);
      out.set(image.getPixelData(), index * slice);
    }
    fs.writeFileSync(`${outPrefix}.${m}.u8`, out);
  });
  const segments = Object.entries(result.segMetadata.data || {})
    .filter(([, s]) => s)
    .map(([index, s]) => ({ index: Number(index), label: s.SegmentLabel }));
  const summary = {
    groups: result.labelMapImages.length,
    shape: [imageIds.length, plane.rows, plane.columns],
    segments,
    overlapping: Boolean(result.overlappingSegments),
  };
  fs.writeFileSync(`${outPrefix}.json`, JSON.stringify(summary));
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`cornerstone3d: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
