// What an operator sees of the gateway's status page, in a real browser: Debian's headless
// Chromium (started by playwright-core; no browser is downloaded) opens the page with HTTP
// basic credentials, takes a screenshot and reads the tables from the DOM; with a job id,
// it then presses that job's Retry button and reads the page the form leads to.
//
//   node status_page.mjs URL USER PASSWORD OUT_PREFIX [RETRY_JOB_ID]
//
// Writes OUT_PREFIX.png (the whole page) and OUT_PREFIX.json:
//   {status, title, jobs: [{id, state, series, ran}], dead: [{job, series, reason, button}],
//    held: [{series, reason}], models: "...", disk: "...",
//    retry: {status, url, notice, jobs: [...]} (with RETRY_JOB_ID)}
// Exit code 1 with the error on stderr. Environment: RADBRIDGE_CHROMIUM (default
// /usr/bin/chromium).
import fs from "node:fs";
import { launchChromium } from "./chromium.mjs";

function readTables() {
  const rows = (id) => [...document.querySelectorAll(`#${id} tbody tr`)].map((tr) =>
    [...tr.querySelectorAll("td")].map((td) => td.textContent.trim()));
  const text = (id) => (document.getElementById(id) || { textContent: "" }).textContent.trim();
  return {
    title: document.title,
    jobs: rows("jobs").map((c) => ({ id: c[0], state: c[1], series: c[2], ran: c[9] })),
    dead: [...document.querySelectorAll("#dead-lettered tbody tr")].map((tr) => {
      const c = [...tr.querySelectorAll("td")].map((td) => td.textContent.trim());
      return { job: c[0], series: c[1], reason: c[3], button: !!tr.querySelector("button") };
    }),
    held: rows("held").map((c) => ({ series: c[0], reason: c[3] })),
    models: text("models"),
    disk: text("disk"),
    notice: text("notice"),
  };
}

async function main([url, user, password, outPrefix, retryJob]) {
  if (!outPrefix) {
    throw new Error("usage: node status_page.mjs URL USER PASSWORD OUT_PREFIX [RETRY_JOB_ID]");
  }
  const browser = await launchChromium();
  try {
    const context = await browser.newContext({
      httpCredentials: { username: user, password },
      viewport: { width: 1400, height: 900 },
    });
    const page = await context.newPage();
    const response = await page.goto(url);
    await page.waitForSelector("#summary");
    await page.screenshot({ path: `${outPrefix}.png`, fullPage: true });
    const result = { status: response.status(), ...(await page.evaluate(readTables)) };
    if (retryJob) {
      const [answer] = await Promise.all([
        page.waitForNavigation(),
        page.click(`#retry-${retryJob}`),
      ]);
      result.retry = { status: answer.status(), url: page.url(), ...(await page.evaluate(readTables)) };
      await page.screenshot({ path: `${outPrefix}.after-retry.png`, fullPage: true });
    }
    fs.writeFileSync(`${outPrefix}.json`, JSON.stringify(result));
  } finally {
    await browser.close();
  }
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`status-page: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
