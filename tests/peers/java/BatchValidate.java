// Runs PixelMed's DicomSRValidator or DicomInstanceValidator over many files in ONE JVM,
// so the XSLT stylesheets are compiled once. Launched by tests/peers/pixelmed.py as a
// single-file source program (`java BatchValidate.java MODE FILE...`, JEP 330).
// Each file's report is framed by "@@@ BEGIN <path>" and "@@@ END <path>" lines.
import com.pixelmed.dicom.AttributeList;
import com.pixelmed.dicom.TagFromName;
import com.pixelmed.validate.DicomInstanceValidator;
import com.pixelmed.validate.DicomSRValidator;

public class BatchValidate {
    public static void main(String[] args) throws Exception {
        if (args.length < 2 || !(args[0].equals("sr") || args[0].equals("instance"))) {
            System.err.println("usage: BatchValidate sr|instance FILE...");
            System.exit(2);
        }
        boolean sr = args[0].equals("sr");
        DicomSRValidator srValidator = sr ? new DicomSRValidator() : null;
        DicomInstanceValidator instanceValidator = sr ? null : new DicomInstanceValidator();
        for (int i = 1; i < args.length; i++) {
            String path = args[i];
            System.out.println("@@@ BEGIN " + path);
            try {
                String report;
                if (sr) {
                    // Same options as DicomSRValidator.main without flags.
                    report = srValidator.validate(path, false, true, false, false, false);
                } else {
                    AttributeList list = new AttributeList();
                    list.read(path, TagFromName.PixelData);
                    report = instanceValidator.validate(list);
                }
                System.out.print(report);
                if (!report.endsWith("\n")) {
                    System.out.println();
                }
            } catch (Exception e) {
                System.out.println("Error: validator raised " + e);
            }
            System.out.println("@@@ END " + path);
        }
        System.out.flush();
    }
}
