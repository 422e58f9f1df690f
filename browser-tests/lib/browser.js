// Launches Debian's chromium for the browser tests, headless with a fresh
// temporary profile, and without the background networking that this
// machine's closed network would refuse.

import { chromium } from "playwright-core";

import { CHROMIUM } from "./paths.js";

export function launchChromium(timeout) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true, // Playwright adds --headless; it also gives a fresh temporary profile
    args: [
      "--no-sandbox",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-gpu",
      "--no-first-run",
      "--disable-sync",
    ],
    timeout,
  });
}
