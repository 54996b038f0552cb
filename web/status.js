// status.js - the coordinator's status page: polls /v1/status (or /v1/jobs/ID) once a second
// and redraws. Every value from the cluster (job names, errors, paths, worker names) reaches
// the page through textContent or attributes set by the DOM API, never as HTML, so nothing a
// user typed can become markup. The token lives only in an HttpOnly cookie set by /v1/login.
"use strict";

const $ = (id) => document.getElementById(id);
let timer = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "style") e.style.cssText = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}

function ms(n) {
  if (n == null) return "";
  if (n < 1000) return n + " ms";
  if (n < 60000) return (n / 1000).toFixed(1) + " s";
  return Math.floor(n / 60000) + " min " + Math.round((n % 60000) / 1000) + " s";
}

function bar(done, total) {
  const pct = total ? Math.round((100 * done) / total) : 0;
  return el("span", {}, el("span", { class: "bar", title: pct + "%" }, el("span", { style: "width:" + pct + "%" })),
    " " + done + "/" + total);
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function show(which) {
  for (const id of ["login", "cluster", "job"]) $(id).hidden = id !== which;
  $("logout").hidden = which === "login";
}

function elapsed(j) {
  if (!j.start_ms) return "";
  return ms((j.end_ms || Date.now()) - j.start_ms);
}

function drawCluster(s) {
  fill($("coordinators").tBodies[0], (s.coordinators || []).map((c) =>
    el("tr", {}, el("td", {}, c.address), el("td", { class: "state-" + c.role }, c.role),
      el("td", { class: "num" }, c.epoch), el("td", {}, c.state))));
  fill($("workers").tBodies[0], (s.workers || []).map((w) => {
    const h = w.health || {};
    return el("tr", { "data-worker": w.name }, el("td", {}, w.name), el("td", {}, w.address),
      el("td", { class: "state-" + w.state }, w.state), el("td", { class: "num" }, w.slots),
      el("td", { class: "num" }, w.running), el("td", { class: "state-" + (h.state || "") }, h.state || ""),
      el("td", { class: "num" }, h.score == null ? "" : Number(h.score).toFixed(2)),
      el("td", { class: "num" }, ms(w.last_seen_ms_ago) + " ago"));
  }));
  const jobs = (s.jobs || []).slice().reverse();
  fill($("jobs").tBodies[0], jobs.map((j) => {
    const c = j.counters || {};
    return el("tr", { "data-job": j.id }, el("td", {}, el("a", { href: "#/job/" + encodeURIComponent(j.id) }, j.id)),
      el("td", {}, j.job), el("td", { class: "state-" + j.state }, j.state),
      el("td", { class: "maps" }, bar(j.maps_done, j.maps_total)),
      el("td", { class: "reduces" }, bar(j.reduces_done, j.reduces_total)),
      el("td", { class: "num" }, elapsed(j)), el("td", { class: "num" }, c.input_records),
      el("td", { class: "num" }, c.output_records), el("td", {}, j.out));
  }));
  const alive = (s.workers || []).filter((w) => w.state === "alive").length;
  const running = (s.jobs || []).filter((j) => j.state === "running" || j.state === "queued").length;
  $("summary").textContent = alive + " workers alive, " + running + " jobs running";
}

function drawJob(j) {
  $("job-title").textContent = "Job " + j.id + " (" + j.job + "): " + j.state;
  $("job-error").textContent = j.error || "";
  const facts = [["output", j.out], ["maps", j.maps_done + "/" + j.maps_total], ["reduces", j.reduces_done + "/" + j.reduces_total],
    ["elapsed", elapsed(j)], ["weight", j.weight]];
  if (j.summary) {
    facts.push(["slowest attempt", ms(j.summary.slowest_attempt_ms) + " on " + (j.summary.slowest_worker || "")]);
    facts.push(["attempts", j.summary.attempts + " (" + j.summary.speculative + " speculative, " + j.summary.killed + " killed)"]);
  }
  fill($("job-facts").tBodies[0], facts.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
  fill($("counters").tBodies[0], Object.entries(j.counters || {}).map(([k, v]) =>
    el("tr", {}, el("th", {}, k), el("td", { class: "num" }, v))));

  const tasks = j.tasks || [];
  fill($("tasks").tBodies[0], tasks.map((t) => el("tr", { "data-task": t.phase + "-" + t.index },
    el("td", {}, t.phase + " " + t.index), el("td", { class: "state-" + t.state }, t.state),
    el("td", {}, ...(t.attempts || []).map((a) => el("div", { class: a.speculative ? "copy" : "" },
      "a" + a.id + " on " + a.worker + ": " + a.state + (a.end_ms && a.start_ms ? ", " + ms(a.end_ms - a.start_ms) : "") +
      (a.speculative ? " (speculative copy" + (a.copy ? ", " + a.copy : "") + ")" : "") + (a.error ? " - " + a.error : "")))))));

  // The timeline: one lane per worker, each attempt placed by its start and end.
  const atts = [];
  for (const t of tasks) for (const a of t.attempts || []) if (a.start_ms) atts.push({ t, a });
  const t0 = Math.min(j.start_ms || Infinity, ...atts.map((x) => x.a.start_ms));
  const t1 = Math.max(j.end_ms || Date.now(), ...atts.map((x) => x.a.end_ms || Date.now()));
  const span = Math.max(1, t1 - t0);
  const lanes = new Map();
  for (const x of atts) {
    if (!lanes.has(x.a.worker)) lanes.set(x.a.worker, []);
    lanes.get(x.a.worker).push(x);
  }
  // Attempts that overlap on one worker (one per slot) go to separate rows of its lane.
  const rows = [];
  for (const [w, xs] of [...lanes.entries()].sort()) {
    xs.sort((p, q) => p.a.start_ms - q.a.start_ms);
    const ends = [];
    const sub = [];
    for (const x of xs) {
      let k = ends.findIndex((e) => e <= x.a.start_ms);
      if (k < 0) k = ends.push(0) - 1;
      ends[k] = x.a.end_ms || Infinity;
      (sub[k] = sub[k] || []).push(x);
    }
    sub.forEach((ys, k) => rows.push(el("div", { class: "lane", "data-worker": w },
      el("span", { class: "who" }, k ? "" : w),
      el("span", { class: "track" }, ...ys.map(({ t, a }) => {
        const left = ((a.start_ms - t0) / span) * 100, width = (((a.end_ms || Date.now()) - a.start_ms) / span) * 100;
        const bad = a.state === "failed" || a.state === "killed";
        return el("span", {
          class: "att " + t.phase + (bad ? " failed" : "") + (a.speculative ? " copy" : ""),
          style: "left:" + left.toFixed(2) + "%;width:" + Math.max(width, 0.3).toFixed(2) + "%",
          title: t.phase + " " + t.index + " a" + a.id + " on " + w + ": " + a.state + (a.error ? " - " + a.error : ""),
        });
      })))));
  }
  $("timeline").replaceChildren(...rows);
}

async function refresh() {
  const m = location.hash.match(/^#\/job\/(.+)$/);
  const url = m ? "/v1/jobs/" + m[1] : "/v1/status";
  let r;
  try {
    r = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  } catch (e) {
    $("updated").textContent = "coordinator unreachable";
    return;
  }
  if (r.status === 401) {
    show("login");
    return;
  }
  if (!r.ok) {
    $("updated").textContent = "HTTP " + r.status;
    return;
  }
  const s = await r.json();
  if (m) {
    const j = (s.jobs || [])[0];
    if (j) drawJob(j);
    show("job");
  } else {
    drawCluster(s);
    show("cluster");
  }
  $("updated").textContent = "updated " + new Date().toLocaleTimeString();
}

function start() {
  clearInterval(timer);
  refresh();
  timer = setInterval(refresh, 1000);
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const r = await fetch("/v1/login", { method: "POST", body: $("token").value, credentials: "same-origin" });
  $("token").value = "";
  if (r.status === 204) {
    $("login-error").textContent = "";
    start();
  } else {
    $("login-error").textContent = r.status === 401 ? "Wrong token." : "Login failed (HTTP " + r.status + ").";
  }
});
$("logout").addEventListener("click", async () => {
  await fetch("/v1/logout", { method: "POST", credentials: "same-origin" });
  show("login");
});
window.addEventListener("hashchange", refresh);
start();
