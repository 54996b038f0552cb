// status.mjs - drives Debian's chromium (through playwright-core) against a live coordinator's
// status page; run by tests/e2e/statuspage.sh.
//
//   node status.mjs URL TOKEN_FILE OUT_DIR JOB_ID WORKER...
//
// Checks, failing with exit 1 and a message on the first that does not hold:
//  1. without the token the page shows the login form and nothing of the cluster;
//  2. a wrong token is refused and says so;
//  3. after logging in, the workers and the job appear with its progress bars, and the job's
//     page shows its tasks and a timeline lane per worker; the DOM of both is saved
//     (OUT_DIR/cluster.html, job.html) with screenshots (cluster.png, job.png);
//  4. the token appears nowhere in the URL, and document.cookie cannot read it (HttpOnly);
//  5. text from users (the job's output path) is shown as text, never as markup.
import { chromium } from "playwright-core";
import { readFileSync, writeFileSync } from "node:fs";

const [url, tokenFile, outDir, jobId, ...workers] = process.argv.slice(2);
const token = readFileSync(tokenFile, "utf8").split("\n")[0].trim();

function check(cond, what) {
  if (!cond) {
    console.error("status page: " + what);
    process.exit(1);
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const deadline = { timeout: 15000 };

  // 1. No token: the login form, nothing else.
  await page.goto(url);
  await page.waitForSelector("#login:not([hidden])", deadline);
  check(await page.isHidden("#cluster"), "the cluster section is visible before logging in");
  const before = await page.content();
  for (const w of workers) check(!before.includes(w), "worker " + w + " is in the page before logging in");
  check(!before.includes(jobId), "the job is in the page before logging in");

  // 2. A wrong token.
  await page.fill("#token", "not-the-token");
  await page.click("#login-form button[type=submit]");
  await page.waitForFunction(() => document.getElementById("login-error").textContent.includes("Wrong"), null, deadline);
  check(await page.isHidden("#cluster"), "a wrong token showed the cluster");

  // 3. Log in: workers, the job and its progress.
  await page.fill("#token", token);
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#cluster:not([hidden])", deadline);
  for (const w of workers) await page.waitForSelector(`#workers tr[data-worker="${w}"]`, deadline);
  const row = `#jobs tr[data-job="${jobId}"]`;
  await page.waitForSelector(row, deadline);
  await page.waitForFunction((sel) => document.querySelector(sel + " td:nth-child(3)").textContent === "succeeded",
    row, { timeout: 60000 });
  const maps = await page.textContent(row + " td.maps");
  const m = maps.match(/(\d+)\/(\d+)/);
  check(m && m[1] === m[2] && Number(m[2]) > 0, "the job's map progress is not complete: " + maps);
  check((await page.getAttribute(row + " td.maps .bar > span", "style")).includes("100%"), "the map progress bar is not full");
  check(page.url().indexOf(token) < 0, "the token is in the URL");
  check(!(await page.evaluate(() => document.cookie)).includes(token), "a script can read the token cookie");
  const cluster = await page.content();
  writeFileSync(outDir + "/cluster.html", cluster);
  await page.screenshot({ path: outDir + "/cluster.png", fullPage: true });

  // 5. User text stays text: the output path holds markup.
  const outCell = await page.$(row + " td:last-child");
  check((await outCell.$$("b, img, script")).length === 0, "the output path became markup");
  check((await outCell.textContent()).includes("<b>"), "the output path is not shown as written");

  // The job's page: tasks, and a timeline lane per worker that ran an attempt.
  await page.click(`#jobs tr[data-job="${jobId}"] a`);
  await page.waitForSelector("#job:not([hidden]) #tasks tbody tr", deadline);
  await page.waitForSelector("#timeline .lane", deadline);
  const tasks = await page.$$eval("#tasks tbody tr", (rs) => rs.length);
  check(tasks > 0, "the job page lists no tasks");
  const lanes = [...new Set(await page.$$eval("#timeline .lane", (ls) => ls.map((l) => l.dataset.worker)))];
  for (const l of lanes) check(workers.includes(l), "a timeline lane for an unknown worker: " + l);
  check((await page.$$("#timeline .att")).length >= tasks, "the timeline shows fewer attempts than tasks");
  writeFileSync(outDir + "/job.html", await page.content());
  await page.screenshot({ path: outDir + "/job.png", fullPage: true });

  // Logging out returns to the form, and the data requests are refused again.
  await page.click("#logout");
  await page.waitForSelector("#login:not([hidden])", deadline);
  const st = await page.evaluate(async () => (await fetch("/v1/status")).status);
  check(st === 401, "after logging out /v1/status answered " + st);
  console.log("status page: " + workers.length + " workers, job " + jobId + " with " + tasks + " tasks, " + lanes.length + " lanes");
} finally {
  await browser.close();
}
