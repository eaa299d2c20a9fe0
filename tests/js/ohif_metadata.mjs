// What OHIF's MetadataProvider puts in generalImageModule and the default Cornerstone
// providers leave out: the SOP Instance UID (the SEG adapter finds a frame's source
// image by it) and the Instance Number. Shared by seg_cornerstone3d.mjs and the page.
export function ohifGeneralImageModule(metaData) {
  return (type, imageId) => {
    if (type !== "generalImageModule") {
      return undefined;
    }
    const instance = metaData.get("instance", imageId);
    if (!instance || !instance.SOPInstanceUID) {
      return undefined;
    }
    return {
      sopInstanceUID: instance.SOPInstanceUID,
      instanceNumber: Number(instance.InstanceNumber),
    };
  };
}
