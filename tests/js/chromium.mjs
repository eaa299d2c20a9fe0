// Debian's headless Chromium, started by playwright-core (no browser is downloaded).
// Environment: RADBRIDGE_CHROMIUM (default /usr/bin/chromium).
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.RADBRIDGE_CHROMIUM || "/usr/bin/chromium";

export function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-dev-shm-usage", "--disable-component-update", "--no-first-run"],
  });
}
