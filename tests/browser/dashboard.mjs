// Drives the gateway's web page in headless Chromium (Debian's), as a technician would on a
// phone-sized screen: first-start setup with the code from the log, a wrong then a right
// login, the dashboard with the live camera, an alert arriving live, dead-letter replay,
// logout. Screenshots go to $ARTIFACTS. Run by tests/telemetry.rs; exits non-zero on failure.
import { chromium } from "playwright-core";

const url = process.env.WATCHPOST_URL;
const code = process.env.SETUP_CODE;
const out = process.env.ARTIFACTS;
const password = "correct horse battery staple";

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"],
});
let failed = null;
const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 390, height: 844 } });
const page = await context.newPage();
const step = async (name, fn) => {
  if (failed) return;
  try {
    await fn();
    console.log(`ok: ${name}`);
  } catch (e) {
    failed = `${name}: ${e.message}`;
    await page.screenshot({ path: `${out}/failed-${name.replace(/\W+/g, "-")}.png`, fullPage: true }).catch(() => {});
  }
};

await step("open", async () => {
  await page.goto(url);
  await page.waitForSelector("#setup:not(.hidden)", { timeout: 10000 });
});
await step("setup with a wrong code is refused", async () => {
  await page.fill("#setup-code", "AAAA-BBBB-CCCC");
  await page.fill("#setup-password", password);
  await page.click("#setup-form button");
  await page.waitForFunction(() => document.querySelector("#setup-error").textContent.includes("wrong setup code"), null, { timeout: 10000 });
});
await step("setup with the code from the log", async () => {
  await page.fill("#setup-code", code);
  await page.click("#setup-form button");
  await page.waitForSelector("#login:not(.hidden)", { timeout: 10000 });
  await page.screenshot({ path: `${out}/1-login.png`, fullPage: true });
});
await step("a wrong password is refused", async () => {
  await page.fill("#login-password", "not the password");
  await page.click("#login-form button");
  await page.waitForFunction(() => document.querySelector("#login-error").textContent.includes("wrong password"), null, { timeout: 10000 });
});
await step("login", async () => {
  await page.fill("#login-password", password);
  await page.click("#login-form button");
  await page.waitForSelector("#dashboard:not(.hidden)", { timeout: 10000 });
});
await step("the camera streams with a live snapshot", async () => {
  await page.waitForSelector('.cam[data-camera="yard"] .state.streaming', { timeout: 30000 });
  await page.waitForFunction(() => {
    const img = document.querySelector('.cam[data-camera="yard"] img');
    return img && img.complete && img.naturalWidth === 640;
  }, null, { timeout: 15000 });
  await page.screenshot({ path: `${out}/2-dashboard.png`, fullPage: true });
});
await step("a new alert appears live", async () => {
  const before = await page.locator("#alerts tr").count();
  await page.waitForFunction((n) => document.querySelectorAll("#alerts tr").length > n, before, { timeout: 45000 });
  const row = await page.locator("#alerts tr").first().innerText();
  if (!row.includes("person")) throw new Error(`newest row: ${row}`);
  await page.screenshot({ path: `${out}/3-live-alert.png`, fullPage: true });
});
await step("replay dead letters", async () => {
  await page.click("#replay");
  await page.waitForFunction(() => /replayed \d+/.test(document.querySelector("#replay-result").textContent), null, { timeout: 10000 });
});
await step("a reload keeps the session", async () => {
  await page.reload();
  await page.waitForSelector("#dashboard:not(.hidden)", { timeout: 10000 });
});
await step("logout", async () => {
  await page.click("#logout");
  await page.waitForSelector("#login:not(.hidden)", { timeout: 10000 });
  await page.screenshot({ path: `${out}/4-logged-out.png`, fullPage: true });
});
await browser.close();
if (failed) {
  console.error(`browser test failed at ${failed}`);
  process.exit(1);
}
console.log("browser: all steps passed");
