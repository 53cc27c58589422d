// What both browser tests need: Debian's Chromium headless at phone width, steps that stop at
// the first failure with a screenshot of it, and the "no sideways scrolling" check.
import { chromium } from "playwright-core";

export async function open(out) {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--no-first-run"],
  });
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  const state = { failed: null };
  const step = async (name, fn) => {
    if (state.failed) return;
    try {
      await fn();
      console.log(`ok: ${name}`);
    } catch (e) {
      state.failed = `${name}: ${e.message}`;
      await page.screenshot({ path: `${out}/failed-${name.replace(/\W+/g, "-")}.png`, fullPage: true }).catch(() => {});
    }
  };
  const noSideways = async (where) => {
    const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    if (scroll > inner) throw new Error(`${where}: the page is ${scroll} px wide on a ${inner} px screen`);
  };
  // Closes the browser and exits non-zero if a step failed.
  const finish = async () => {
    await browser.close();
    if (state.failed) {
      console.error(`browser test failed at ${state.failed}`);
      process.exit(1);
    }
    console.log("browser: all steps passed");
  };
  return { browser, context, page, step, noSideways, finish };
}
