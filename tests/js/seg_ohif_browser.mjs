// What an OHIF 3.13 user sees of a SEG, in a real browser: seg_ohif_page.mjs (OHIF's
// SEG load path with @cornerstonejs/adapters, core and dicom-image-loader 5.6.8) in
// headless Chromium (Debian's package, started by playwright-core; no browser is
// downloaded), served from 127.0.0.1 with the files named on the command line.
//
//   node seg_ohif_browser.mjs SEG.dcm OUT_PREFIX SOURCE1.dcm SOURCE2.dcm ...
//
// Writes what seg_cornerstone3d.mjs writes (OUT_PREFIX.json and one uint8 buffer
// OUT_PREFIX.<m>.u8 [image, row, column] per labelmap group). The page and the
// decoder worker are bundled with esbuild from node_modules on first use, into
// node_modules/.radbridge-ohif-page/<hash of the page sources and the lock file>. Exit code 1 with the page's error on stderr.
// Environment: RADBRIDGE_CHROMIUM (default /usr/bin/chromium).
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { launchChromium } from "./chromium.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MODULES = path.join(HERE, "node_modules");
const PAGE_SOURCES = ["seg_ohif_page.mjs", "ohif_metadata.mjs", "package-lock.json"];
const BUNDLE = path.join(MODULES, ".radbridge-ohif-page", sourcesHash());

// Node built-ins that emscripten codecs name on their Node-only branch: empty here.
const noNodeBuiltins = {
  name: "no-node-builtins",
  setup(build) {
    build.onResolve({ filter: /^(fs|path|crypto|module|url|worker_threads|ws)$/ }, (a) => ({
      path: a.path,
      namespace: "empty",
    }));
    build.onLoad({ filter: /.*/, namespace: "empty" }, () => ({ contents: "export default {};" }));
  },
};

function sourcesHash() {
  const hash = crypto.createHash("sha256");
  for (const name of PAGE_SOURCES) {
    hash.update(fs.readFileSync(path.join(HERE, name)));
  }
  return hash.digest("hex").slice(0, 16);
}

async function bundle() {
  if (fs.existsSync(BUNDLE)) {
    return;
  }
  const building = `${BUNDLE}.${process.pid}`;
  const common = {
    bundle: true,
    format: "esm",
    platform: "browser",
    logLevel: "error",
    plugins: [noNodeBuiltins],
    define: { "process.env.NODE_ENV": '"production"' },
    absWorkingDir: HERE,
  };
  await esbuild.build({
    ...common,
    entryPoints: [path.join(HERE, "seg_ohif_page.mjs")],
    outfile: path.join(building, "page.js"),
  });
  // dicom-image-loader starts new Worker(new URL("./decodeImageFrameWorker.js", import.meta.url)).
  await esbuild.build({
    ...common,
    entryPoints: [
      path.join(MODULES, "@cornerstonejs/dicom-image-loader/dist/esm/decodeImageFrameWorker.js"),
    ],
    outfile: path.join(building, "decodeImageFrameWorker.js"),
  });
  try {
    fs.renameSync(building, BUNDLE);
  } catch (error) {
    if (!fs.existsSync(BUNDLE)) {
      throw error;
    }
    fs.rmSync(building, { recursive: true, force: true }); // built meanwhile by another run
  }
}

function serve(files) {
  // The codecs fetch new URL("@cornerstonejs/codec-x/decodewasm", import.meta.url).
  const codec = /^\/page\/(@cornerstonejs\/codec-[\w-]+)\/(\w+)$/;
  return http.createServer((request, response) => {
    const url = request.url.split("?")[0];
    let file;
    const wasm = url.match(codec);
    if (url === "/") {
      response.writeHead(200, { "content-type": "text/html" });
      response.end('<!doctype html><script type="module" src="/page/page.js"></script>');
      return;
    } else if (wasm) {
      const pkg = JSON.parse(fs.readFileSync(path.join(MODULES, wasm[1], "package.json")));
      file = path.join(MODULES, wasm[1], pkg.exports[`./${wasm[2]}`]);
    } else if (/^\/page\/[\w.]+\.js$/.test(url)) {
      file = path.join(BUNDLE, url.slice("/page/".length));
    } else if (/^\/file\/\d+$/.test(url)) {
      file = files[Number(url.slice("/file/".length))];
    }
    if (!file || !fs.existsSync(file)) {
      response.writeHead(404);
      response.end();
      return;
    }
    const type = file.endsWith(".js")
      ? "text/javascript"
      : file.endsWith(".wasm")
        ? "application/wasm"
        : "application/dicom";
    response.writeHead(200, { "content-type": type });
    response.end(fs.readFileSync(file));
  });
}

async function main(argv) {
  if (argv.length < 3) {
    process.stderr.write("usage: node seg_ohif_browser.mjs SEG OUT_PREFIX SOURCE...\n");
    process.exit(2);
  }
  const [segPath, outPrefix, ...sources] = argv;
  await bundle();
  const files = [segPath, ...sources];
  const server = serve(files);
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (error) => errors.push(error.message));
    await page.goto(`${base}/`);
    await page.waitForFunction(() => window.radbridgeReady === true, null, { timeout: 60000 });
    const urls = files.map((_, i) => `${base}/file/${i}`);
    const result = await page
      .evaluate(([seg, srcs]) => window.radbridgeRebuild(seg, srcs), [urls[0], urls.slice(1)])
      .catch((error) => {
        throw new Error(`${error.message}${errors.length ? `\n${errors.join("\n")}` : ""}`);
      });
    result.groups.forEach((group, m) => {
      fs.writeFileSync(`${outPrefix}.${m}.u8`, Buffer.from(group, "base64"));
    });
    const { shape, segments, overlapping } = result;
    const summary = { groups: result.groups.length, shape, segments, overlapping };
    fs.writeFileSync(`${outPrefix}.json`, JSON.stringify(summary));
  } finally {
    await browser.close();
    server.close();
  }
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`ohif-browser: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
