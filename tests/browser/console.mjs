// Drives the fleet console's page in headless Chromium (Debian's) at phone width, as an
// operator would: first-start setup with the code from the log, sign-in, adding a gateway
// (its key goes to $ARTIFACTS/key.txt, and the test starts the gateways with it), the fleet
// page filtered to a site, a gateway opened with its camera down, a config change pushed and
// "applied" seen, a viewer account that sees no push and is refused one. Run by
// tests/it/console/browser.rs; exits non-zero on failure. Screenshots go to $ARTIFACTS.
import { open } from "./harness.mjs";
import { writeFileSync } from "node:fs";

const url = process.env.CONSOLE_URL;
const code = process.env.SETUP_CODE;
const out = process.env.ARTIFACTS;
const password = "console admin password 1";
const viewerPassword = "viewer password 12";

const { page, step, noSideways, finish } = await open(out);

await step("setup with the code from the log", async () => {
  await page.goto(url);
  await page.waitForSelector("#setup:not(.hidden)", { timeout: 10000 });
  await page.fill("#setup-code", code);
  await page.fill("#setup-password", password);
  await page.click("#setup-form button");
  await page.waitForSelector("#login:not(.hidden)", { timeout: 10000 });
});
await step("a wrong password is refused", async () => {
  await page.fill("#login-password", "not the password");
  await page.click("#login-form button");
  await page.waitForFunction(() => document.querySelector("#login-error").textContent.includes("wrong password"), null, { timeout: 10000 });
});
await step("sign in", async () => {
  await page.fill("#login-password", password);
  await page.click("#login-form button");
  await page.waitForSelector("#view-fleet:not(.hidden)", { timeout: 10000 });
  await noSideways("fleet");
});
await step("add a gateway and take its key", async () => {
  await page.click("#nav button[data-view=admin]");
  await page.fill("#enrol-device", "gw-north");
  await page.click("#enrol-form button");
  await page.waitForSelector("#enrol-result:not(.hidden)", { timeout: 10000 });
  const lines = await page.locator("#enrol-config").innerText();
  const key = /control_key = "([0-9a-f]+)"/.exec(lines);
  if (!key) throw new Error(`no key in: ${lines}`);
  writeFileSync(`${out}/key.txt`, key[1]);
  await page.screenshot({ path: `${out}/1-enrol.png`, fullPage: true });
});
await step("both gateways report", async () => {
  await page.click("#nav button[data-view=fleet]");
  await page.waitForFunction(() => document.querySelectorAll("#fleet-table tbody tr").length >= 2
    && [...document.querySelectorAll("#fleet-table tbody tr")].every((r) => r.innerText.includes("online")), null, { timeout: 120000 });
  await page.screenshot({ path: `${out}/2-fleet.png`, fullPage: true });
  await noSideways("fleet with gateways");
});
await step("filter to a site", async () => {
  await page.selectOption("#f-site", "north");
  const rows = await page.locator("#fleet-table tbody tr").count();
  if (rows !== 1) throw new Error(`${rows} rows for site north`);
  const name = await page.locator("#fleet-table tbody tr").first().getAttribute("data-device");
  if (name !== "gw-north") throw new Error(`site north shows ${name}`);
});
await step("open the gateway and see its camera down", async () => {
  await page.waitForFunction(() => document.querySelector("#fleet-table tbody tr").innerText.includes("camera-down"), null, { timeout: 30000 });
  await page.click("#fleet-table tbody tr[data-device=gw-north]");
  await page.waitForSelector("#view-gateway:not(.hidden) .cam[data-camera=gate]", { timeout: 10000 });
  const gate = await page.locator(".cam[data-camera=gate]").innerText();
  if (gate.includes("streaming")) throw new Error(`gate shown streaming: ${gate}`);
  await page.screenshot({ path: `${out}/3-gateway.png`, fullPage: true });
  await noSideways("gateway");
});
await step("push a config change and see it applied", async () => {
  await page.waitForFunction(() => document.querySelector("#gw-config").value.includes("[[rule]]"), null, { timeout: 20000 });
  const text = await page.inputValue("#gw-config");
  await page.fill("#gw-config", text.replace(/cooldown_seconds = \d+/, "cooldown_seconds = 9"));
  await page.click("#gw-push");
  await page.waitForFunction(() => /applied, version \d+/.test(document.querySelector("#gw-push-result").textContent), null, { timeout: 20000 });
  await page.screenshot({ path: `${out}/4-pushed.png`, fullPage: true });
});
await step("a refused push shows the gateway's errors", async () => {
  await page.fill("#gw-config", (await page.inputValue("#gw-config")).replace(/detect_fps = \d+/, "detect_fps = -3"));
  await page.click("#gw-push");
  await page.waitForFunction(() => document.querySelector("#gw-push-result").textContent.startsWith("refused"), null, { timeout: 20000 });
  const msg = await page.locator("#gw-push-result").innerText();
  if (!msg.includes("detect_fps")) throw new Error(`the error does not name the field: ${msg}`);
});
await step("add a viewer", async () => {
  await page.click("#nav button[data-view=admin]");
  await page.fill("#user-name", "ops");
  await page.selectOption("#user-role", "viewer");
  await page.fill("#user-password", viewerPassword);
  await page.click("#user-form button");
  await page.waitForFunction(() => document.querySelector("#users").innerText.includes("ops — viewer"), null, { timeout: 10000 });
  await page.click("#logout");
  await page.waitForSelector("#login:not(.hidden)", { timeout: 10000 });
});
await step("a viewer reads and cannot push", async () => {
  await page.fill("#login-user", "ops");
  await page.fill("#login-password", viewerPassword);
  await page.click("#login-form button");
  await page.waitForSelector("#view-fleet:not(.hidden)", { timeout: 10000 });
  await page.waitForSelector("#fleet-table tbody tr[data-device=gw-north]", { timeout: 20000 });
  await page.click("#fleet-table tbody tr[data-device=gw-north]");
  await page.waitForSelector("#view-gateway:not(.hidden)", { timeout: 10000 });
  if (await page.isVisible("#gw-push")) throw new Error("a viewer sees the push button");
  const status = await page.evaluate(async () => {
    const s = await (await fetch("/api/session")).json();
    const r = await fetch("/api/gateways/gw-north/config", { method: "POST", headers: { "content-type": "application/json", "x-csrf-token": s.csrf }, body: JSON.stringify({ merge: "[device]\nsite = \"x\"\n" }) });
    return r.status;
  });
  if (status !== 403) throw new Error(`a viewer's push answered ${status}`);
  await page.screenshot({ path: `${out}/5-viewer.png`, fullPage: true });
});

await finish();
