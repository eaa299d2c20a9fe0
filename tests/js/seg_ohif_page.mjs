// The page seg_ohif_browser.mjs bundles and opens in headless Chromium: OHIF 3.13's
// SEG load path with the real packages. Sources and the SEG are wadouri: image ids
// served over loopback; @cornerstonejs/dicom-image-loader parses them and decodes the
// SEG's frames in its web worker (its own RLE decoder, CharLS/OpenJPEG WebAssembly),
// as OHIF does for local and WADO-URI files. Like OHIF's SEG extension it then calls
// createFromDicomSegImageId with tolerance 0.001, parserType from the SOP class, one
// frame image id per frame and concurrency 16. Two metadata entries stand in for
// OHIF's MetadataProvider: the SEG's naturalized header ("instance", parsed by dcmjs
// as OHIF's local data source does) and generalImageModule.sopInstanceUID.
import * as core from "@cornerstonejs/core";
import dicomImageLoader from "@cornerstonejs/dicom-image-loader";
import { adaptersSEG } from "@cornerstonejs/adapters";
import { ohifGeneralImageModule } from "./ohif_metadata.mjs";
import dcmjs from "dcmjs";

const LABELMAP_SEG = "1.2.840.10008.5.1.4.1.1.66.7";

function base64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

async function rebuild(segUrl, sourceUrls) {
  await core.init();
  dicomImageLoader.init({ maxWebWorkers: 1 });
  core.metaData.addProvider(ohifGeneralImageModule(core.metaData), 10000);
  const imageIds = sourceUrls.map((url) => `wadouri:${url}`);
  for (const imageId of imageIds) {
    await core.imageLoader.loadAndCacheImage(imageId);
  }
  const segImageId = `wadouri:${segUrl}`;
  const segBytes = await (await fetch(segUrl)).arrayBuffer();
  const parsed = dcmjs.data.DicomMessage.readFile(segBytes);
  const seg = dcmjs.data.DicomMetaDictionary.naturalizeDataset(parsed.dict);
  core.metaData.addProvider(
    (type, imageId) => (type === "instance" && imageId === segImageId ? seg : undefined),
    20000
  );
  const frames = Array.from(
    { length: Number(seg.NumberOfFrames) || 1 },
    (_, i) => `${segImageId}&frame=${i + 1}`
  );
  const result = await adaptersSEG.Cornerstone3D.Segmentation.createFromDicomSegImageId(
    imageIds,
    segImageId,
    {
      metadataProvider: core.metaData,
      tolerance: 0.001,
      parserType: seg.SOPClassUID === LABELMAP_SEG ? "labelmap" : "bitmap",
      frameImageIds: frames,
      concurrency: 16,
    }
  );
  const plane = core.metaData.get("imagePlaneModule", imageIds[0]);
  const slice = plane.rows * plane.columns;
  const groups = result.labelMapImages.map((images) => {
    const out = new Uint8Array(imageIds.length * slice);
    for (const image of images) {
      out.set(image.getPixelData(), imageIds.indexOf(image.referencedImageId) * slice);
    }
    return base64(out);
  });
  const segments = Object.entries(result.segMetadata.data || {})
    .filter(([, s]) => s)
    .map(([index, s]) => ({ index: Number(index), label: s.SegmentLabel }));
  return {
    groups,
    shape: [imageIds.length, plane.rows, plane.columns],
    segments,
    overlapping: Boolean(result.overlappingSegments),
  };
}

window.radbridgeRebuild = rebuild;
window.radbridgeReady = true;
