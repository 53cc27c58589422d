// Drives the gateway's web page in headless Chromium (Debian's), as a technician would on a
// phone-sized screen: first-start setup with the code from the log, a wrong then a right
// login, the live camera, adding a camera (with an inline validation error first), drawing a
// zone on its snapshot, a rule on that zone, a webhook sink with a test alert, a real alert
// arriving live, dead letters replayed, logout. Screenshots go to $ARTIFACTS. Run by
// tests/it/gateway/web.rs; exits non-zero on failure.
import { open } from "./harness.mjs";

const url = process.env.WATCHPOST_URL;
const code = process.env.SETUP_CODE;
const out = process.env.ARTIFACTS;
const dockRtsp = process.env.DOCK_RTSP;
const opsUrl = process.env.OPS_URL;
const opsSecret = process.env.OPS_SECRET;
const password = "correct horse battery staple";

const { context, page, step, noSideways, finish } = await open(out);
const text = (sel) => page.locator(sel).first().innerText();

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
  // The card says what the detector achieves, with the state's age, and draws its boxes.
  await page.waitForFunction(() => {
    const info = document.querySelector('[data-camera-info="yard"]').textContent;
    const state = document.querySelector('[data-camera-state="yard"]').textContent;
    return /\d+\.\d detections\/s · \d+ ms inference · \d+ gated · \d+ alerts in 24 h/.test(info) && /^streaming for \d+ (s|min)$/.test(state);
  }, null, { timeout: 20000 });
  await page.waitForSelector('.cam[data-camera="yard"] svg[data-overlay="yard"] rect.det', { state: "attached", timeout: 40000 });
  await noSideways("dashboard");
  await page.screenshot({ path: `${out}/2-dashboard.png`, fullPage: true });
});
await step("a bad camera setting is shown beside its field", async () => {
  await page.click('[data-add="camera"]');
  await page.fill('#edit-form [name="name"]', "dock");
  await page.fill('#edit-form [name="url"]', dockRtsp);
  await page.fill('#edit-form [name="detect_fps"]', "-1");
  await page.click("#edit-form button.submit");
  await page.waitForFunction(() => document.querySelector("#err-detect_fps").textContent.length > 0, null, { timeout: 15000 });
  await page.screenshot({ path: `${out}/3-inline-error.png`, fullPage: true });
});
await step("add a camera", async () => {
  await page.fill('#edit-form [name="detect_fps"]', "4");
  await page.click("#edit-form button.submit");
  await page.waitForSelector("#edit.hidden", { state: "attached", timeout: 20000 });
  await page.waitForSelector('.cam[data-camera="dock"] .state.streaming', { timeout: 30000 });
});
await step("the zone editor says a camera without a picture cannot be drawn on", async () => {
  await page.locator('.cam[data-camera="gate"] button.zone').click();
  await page.waitForSelector('#zone-result [data-no-picture="gate"]', { timeout: 10000 });
  if (!(await page.isDisabled("#zone-save"))) throw new Error("saving is possible without a picture");
  await page.click("#zone-cancel");
});
await step("draw a zone on the camera's snapshot", async () => {
  await page.locator('.cam[data-camera="dock"] button.zone').click();
  await page.waitForFunction(() => {
    const img = document.querySelector("#zone-img");
    return img && img.complete && img.naturalWidth === 640;
  }, null, { timeout: 15000 });
  const box = await page.locator("#zone-svg").boundingBox();
  for (const [x, y] of [[0.02, 0.02], [0.98, 0.02], [0.98, 0.98], [0.02, 0.98]]) {
    await page.mouse.click(box.x + x * box.width, box.y + y * box.height);
  }
  await page.waitForSelector('#zone-svg[data-points="4"]', { state: "attached", timeout: 5000 });
  await page.fill("#zone-name", "dock-lane");
  await page.click("#zone-save");
  await page.waitForFunction(() => document.querySelector("#zone-result").textContent.includes("saved"), null, { timeout: 15000 });
  await page.waitForSelector('[data-zone="dock-lane"]', { timeout: 10000 });
  await page.screenshot({ path: `${out}/4-zone.png`, fullPage: true });
});
await step("edit the zone: its corners shown, one dragged, saved in place", async () => {
  await page.locator('[data-zone="dock-lane"] button', { hasText: "Edit" }).click();
  await page.waitForSelector('#zone-svg[data-points="4"]', { state: "attached", timeout: 5000 });
  if (!(await page.evaluate(() => document.querySelector("#zone-name").readOnly))) throw new Error("an edited zone's name must stay");
  await page.waitForFunction(() => !document.querySelector("#zone-save").disabled, null, { timeout: 15000 });
  await page.evaluate(() => document.querySelector("#zone-svg").scrollIntoView({ block: "center" }));
  const box = await page.locator("#zone-svg").boundingBox();
  await page.mouse.move(box.x + 0.98 * box.width, box.y + 0.98 * box.height);
  await page.mouse.down();
  await page.mouse.move(box.x + 0.9 * box.width, box.y + 0.9 * box.height, { steps: 5 });
  await page.mouse.up();
  // Dragged, not added.
  await page.waitForSelector('#zone-svg[data-points="4"]', { state: "attached", timeout: 5000 });
  await page.click("#zone-save");
  await page.waitForFunction(() => document.querySelector("#zone-result").textContent.includes('zone "dock-lane" saved'), null, { timeout: 15000 });
});
await step("draw a line across the picture and flip its direction", async () => {
  await page.selectOption("#zone-mode", "line");
  await page.waitForFunction(() => document.querySelector("#zone-save").textContent === "Save line", null, { timeout: 5000 });
  // The whole picture below the sticky header before tapping on it.
  await page.evaluate(() => document.querySelector("#zone-svg").scrollIntoView({ block: "center" }));
  const box = await page.locator("#zone-svg").boundingBox();
  for (const [x, y] of [[0.5, 0.05], [0.5, 0.95]]) await page.mouse.click(box.x + x * box.width, box.y + y * box.height);
  await page.waitForSelector('#zone-svg[data-points="2"]', { state: "attached", timeout: 5000 });
  // The arrow across the line shows "in"; flipping turns it round.
  const arrowX = () => page.evaluate(() => { const a = [...document.querySelectorAll("#zone-svg .in-arrow")].pop(); return Number(a.getAttribute("x2")) - Number(a.getAttribute("x1")); });
  const before = await arrowX();
  await page.click("#line-flip");
  const after = await arrowX();
  if (!(before * after < 0)) throw new Error(`the arrow did not turn round: ${before} then ${after}`);
  await page.fill("#zone-name", "dock-door");
  await page.click("#zone-save");
  await page.waitForFunction(() => document.querySelector("#zone-result").textContent.includes('line "dock-door" saved'), null, { timeout: 15000 });
  await page.waitForSelector('[data-line="dock-door"]', { timeout: 10000 });
  // Its counts on the camera's card and in the list (none yet: nobody walked across).
  await page.waitForSelector('.cam[data-camera="dock"] [data-line-counts="dock-door"]', { timeout: 10000 });
  const listed = await page.textContent('[data-counts="dock-door"]');
  if (!/no crossings yet|\d+ in · \d+ out/.test(listed)) throw new Error(`line counts: ${listed}`);
  await page.screenshot({ path: `${out}/4b-line.png`, fullPage: true });
  await page.selectOption("#zone-mode", "zone");
});
await step("add a rule on the zone", async () => {
  await page.click('[data-add="rule"]');
  await page.fill('#edit-form [name="name"]', "dock-person");
  await page.fill('#edit-form [name="labels"]', "person");
  await page.fill('#edit-form [name="min_confidence"]', "0.5");
  await page.selectOption('#edit-form [name="zone"]', "dock-lane");
  await page.fill('#edit-form [name="cameras"]', "dock");
  await page.fill('#edit-form [name="cooldown_seconds"]', "1");
  await page.fill('#edit-form [name="dwell_seconds"]', "0.5");
  await page.click("#edit-form button.submit");
  await page.waitForSelector('[data-rule="dock-person"]', { timeout: 15000 });
});
await step("each zone says which rules use it", async () => {
  await page.waitForFunction(() => (document.querySelector('[data-used-by="dock-lane"]') || {}).textContent?.includes("used by dock-person"), null, { timeout: 10000 });
});
await step("the rule's dry run shows a person track meeting the zone and dwell conditions", async () => {
  await page.locator('[data-rule="dock-person"] button.dry').click();
  await page.waitForSelector("#dry-run:not(.hidden)", { timeout: 5000 });
  // The bundled clip shows a person for 2 s of every 10: within two loops.
  await page.waitForSelector('#dry-tracks tr[data-label="person"][data-in-zone="true"][data-dwell-ok="true"][data-qualifies="true"]', { state: "attached", timeout: 30000 });
  const verdict = await text("#dry-verdict");
  // With a qualifying track shown, the verdict must agree: it fires, or only the cooldown or
  // "fired already" holds it back; never "no track meets".
  if (!/Would fire now|fired this rule already|cooldown/.test(verdict)) throw new Error(`the verdict disagrees with its tracks: ${verdict}`);
  await noSideways("dry-run");
  await page.screenshot({ path: `${out}/4c-dry-run.png`, fullPage: true });
  await page.click("#dry-close");
});
await step("add a webhook sink", async () => {
  await page.click('[data-add="sink"]');
  await page.fill('#edit-form [name="name"]', "ops");
  // Each kind shows its own fields only.
  await page.selectOption('#edit-form [name="kind"]', "pagerduty");
  if (!(await page.isVisible('#edit-form [name="routing_key"]')) || (await page.isVisible('#edit-form [name="topic"]')))
    throw new Error("a PagerDuty sink's form must show its routing key and no MQTT topic");
  await page.selectOption('#edit-form [name="kind"]', "email");
  if (!(await page.isVisible('#edit-form [name="to"]'))) throw new Error("an email sink's form must show its addresses");
  await page.selectOption('#edit-form [name="kind"]', "webhook");
  if (await page.isVisible('#edit-form [name="to"]')) throw new Error("a webhook's form must not show email addresses");
  await page.fill('#edit-form [name="url"]', opsUrl);
  // A secret made on request, shown once in clear; this test then types the receiver's own.
  await page.click("#edit-form button.gen-secret");
  const made = await page.inputValue('#edit-form [name="secret"]');
  if (!/^whsec_[A-Za-z0-9+/]{32}$/.test(made)) throw new Error(`generated secret: ${made}`);
  await page.fill('#edit-form [name="secret"]', opsSecret);
  await page.click("#edit-form button.submit");
  await page.waitForSelector('[data-sink="ops"]', { timeout: 15000 });
  const shown = await text('[data-sink="ops"]');
  if (shown.includes(opsSecret)) throw new Error("the secret is shown on the page");
  if (!shown.includes("secret set")) throw new Error(`sink line: ${shown}`);
});
await step("adding a camera under a name that exists is refused and changes nothing", async () => {
  await page.click('[data-add="camera"]');
  await page.fill('#edit-form [name="name"]', "dock");
  await page.fill('#edit-form [name="url"]', "rtsp://127.0.0.1:9/other");
  await page.click("#edit-form button.submit");
  await page.waitForFunction(() => document.querySelector("#edit-result").textContent.includes('a camera named "dock" exists'),
                             null, { timeout: 15000 });
  await page.screenshot({ path: `${out}/5-duplicate-refused.png`, fullPage: true });
  await page.click("#edit-cancel");
});
await step("an edit made in a stale tab is refused, the form kept", async () => {
  const other = await context.newPage();
  await other.goto(url);
  const editDock = (p) => p.locator('.cam[data-camera="dock"] button', { hasText: "Edit" }).first();
  await editDock(other).waitFor({ timeout: 15000 });
  await editDock(page).click();
  await editDock(other).click();
  // This tab saves first (unchanged values: the config's version still moves on) ...
  await page.click("#edit-form button.submit");
  await page.waitForSelector("#edit.hidden", { state: "attached", timeout: 20000 });
  // ... so the other tab's save, started from the older version, is refused.
  await other.fill('#edit-form [name="detect_fps"]', "2");
  await other.click("#edit-form button.submit");
  await other.waitForFunction(() => document.querySelector("#edit-result").textContent.includes("changed since it was read"),
                              null, { timeout: 15000 });
  if ((await other.inputValue('#edit-form [name="detect_fps"]')) !== "2") throw new Error("the refused form lost what was typed");
  await other.screenshot({ path: `${out}/6-stale-refused.png`, fullPage: true });
  await other.close();
});
await step("text in a number field is refused in words before anything is sent", async () => {
  await page.locator('.cam[data-camera="dock"] button', { hasText: "Edit" }).first().click();
  await page.fill('#edit-form [name="detect_fps"]', "fast");
  await page.click("#edit-form button.submit");
  await page.waitForFunction(() => document.querySelector("#err-detect_fps").textContent === "must be a number", null, { timeout: 5000 });
  await page.click("#edit-cancel");
});
await step("a delete confirmation outlives the cards' redraw", async () => {
  const del = () => page.locator('.cam[data-camera="gate"] button.delete').first();
  await del().click();
  await page.waitForTimeout(4500);
  const label = await del().innerText();
  if (label !== "Really delete?") throw new Error(`after a redraw the button says ${JSON.stringify(label)}`);
});
await step("send a test alert and see the receiver's answer", async () => {
  await page.locator('[data-sink="ops"] button.test').click();
  await page.waitForFunction(() => /delivered · HTTP 200/.test(document.querySelector('[data-sink="ops"] .answer').textContent), null, { timeout: 15000 });
  await page.screenshot({ path: `${out}/5-test-alert.png`, fullPage: true });
});
await step("a real alert of the new rule appears live", async () => {
  await page.waitForSelector('#alerts tr[data-rule="dock-person"]', { timeout: 45000 });
  // Its severity (the rule's default, medium), and the label under the rule, at phone width.
  const row = await text('#alerts tr[data-rule="dock-person"]');
  if (!row.includes("medium") || !row.includes("person")) throw new Error(`alert row lacks severity or label: ${row}`);
  await noSideways("alerts");
  await page.locator("#alerts-section").scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${out}/6-live-alert.png`, fullPage: true });
});
await step("the alert list filters by rule and severity, and says when nothing matches", async () => {
  await page.fill("#af-rule", "dock-person");
  await page.click('#alert-filter button:not([type="reset"])');
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll("#alerts tr")];
    return rows.length > 0 && rows.every((r) => r.dataset.rule === "dock-person");
  }, null, { timeout: 10000 });
  await page.selectOption("#af-severity", "critical");
  await page.click('#alert-filter button:not([type="reset"])');
  await page.waitForFunction(() => document.querySelector("#af-result").textContent === "no alert matches"
    && document.querySelectorAll("#alerts tr").length === 0, null, { timeout: 10000 });
  await page.click('#alert-filter button[type="reset"]');
  await page.waitForFunction(() => [...document.querySelectorAll("#alerts tr")].some((r) => r.dataset.rule === "person-seen"), null, { timeout: 10000 });
});
await step("an alert's detail shows its delivery chain, and its dead row replays from there", async () => {
  // A dock-person alert committed after the ops sink was added: dead at the refusing
  // receiver (400 twice), delivered to ops. The newest dead row of the rule, until one is.
  let id = null;
  for (let i = 0; i < 30 && !id; i++) {
    const handle = await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll("#dead tr")].filter((r) => r.textContent.includes("dock-person"));
      return rows.length && rows[rows.length - 1].dataset.alertId;
    }, null, { timeout: 60000 });
    const candidate = await handle.jsonValue();
    await page.click(`#alerts tr[data-alert-id="${candidate}"] td`);
    await page.waitForSelector("#alert-chain [data-chain-sink]", { timeout: 10000 });
    if (await page.$('#alert-chain [data-chain-sink="ops"][data-state="delivered"]')) id = candidate;
    else await page.waitForTimeout(2000);
  }
  if (!id) throw new Error("no dead dock-person alert that ops received");
  await page.waitForSelector('#alert-chain [data-chain-sink="receiver"][data-state="dead"]', { timeout: 10000 });
  const refused = await text('#alert-chain [data-chain-sink="receiver"]');
  if ((refused.match(/HTTP 400/g) || []).length < 2) throw new Error(`the refused attempts are not listed: ${refused}`);
  const delivered = await text('#alert-chain [data-chain-sink="ops"]');
  if (!/delivered .*HTTP 200/s.test(delivered)) throw new Error(`the delivered attempt is not listed: ${delivered}`);
  if (!(await text("#alert-chain")).includes("committed")) throw new Error("no commit step");
  if (!(await page.isVisible("#alert-picture"))) throw new Error("no snapshot in the detail");
  if (!(await page.textContent("#alert-payload")).includes(id)) throw new Error("the payload is not the alert's");
  await noSideways("alert-detail");
  await page.screenshot({ path: `${out}/6b-alert-detail.png`, fullPage: true });
  await page.click('#alert-chain [data-chain-sink="receiver"] button.replay-one');
  await page.waitForFunction(() => {
    const t = document.querySelector("#alert-replay-result").textContent;
    return t.includes("replayed") && t.includes("still failed on its last attempt (HTTP 400)");
  }, null, { timeout: 10000 });
  await page.click("#alert-close");
});
await step("replay dead letters", async () => {
  await page.waitForSelector("#dead tr", { timeout: 60000 });
  // One row, with the warning that its sink still refuses (the receiver answers 400).
  await page.locator("#dead button.replay-one").first().click();
  await page.waitForFunction(() => {
    const t = document.querySelector("#replay-result").textContent;
    return t.includes("replayed 1") && t.includes("still failed on its last attempt (HTTP 400)");
  }, null, { timeout: 10000 });
  // Health names the failing sink and its error.
  const sinkLine = await text('#numbers [data-sink="receiver"]');
  if (!sinkLine.includes("last error: HTTP 400")) throw new Error(`health does not say which sink fails: ${sinkLine}`);
  await page.click("#replay");
  await page.waitForFunction(() => /replayed [1-9]\d*/.test(document.querySelector("#replay-result").textContent), null, { timeout: 10000 });
});
await step("a reload keeps the session", async () => {
  await page.reload();
  await page.waitForSelector("#dashboard:not(.hidden)", { timeout: 10000 });
});
await step("logout", async () => {
  await page.click("#logout");
  await page.waitForSelector("#login:not(.hidden)", { timeout: 10000 });
  await page.screenshot({ path: `${out}/7-logged-out.png`, fullPage: true });
});
await finish();
