// Runnel console: live refresh of server-rendered sections, live charts,
// and the write forms. No dependencies; served from the console itself.
"use strict";

const REFRESH_MS = 5000;
const CHART_MS = 2000;
const CHART_POINTS = 120; // the console keeps 120 samples

// Sections marked data-live are re-read from the server every few seconds:
// the page is fetched again and each live section's content replaced by
// the new one's. The server escapes everything it renders, and DOMParser
// runs no scripts, so this adds nothing a reload would not.
function refreshLive() {
  const live = document.querySelectorAll("[data-live][id]");
  if (live.length === 0) return;
  setInterval(async () => {
    if (document.hidden) return;
    try {
      const resp = await fetch(location.href, { headers: { Accept: "text/html", "X-Console-Refresh": "1" } });
      if (!resp.ok) return;
      const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
      for (const el of live) {
        const fresh = doc.getElementById(el.id);
        if (fresh) el.replaceChildren(...fresh.childNodes);
      }
    } catch (e) {
      // The broker may be restarting; the next round tries again.
    }
  }, REFRESH_MS);
}

// A canvas with data-series polls that URL (a series the console keeps
// server-side, sampled every few seconds) and plots its data-field.
function startChart(canvas) {
  const url = canvas.dataset.series, field = canvas.dataset.field, bytes = canvas.dataset.unit === "bytes";
  async function poll() {
    if (document.hidden) return;
    try {
      const resp = await fetch(url);
      if (!resp.ok) return;
      const series = await resp.json();
      const points = series[field];
      // No series at all yet: the console has not sampled twice. Others
      // but not this one: the cluster cannot give it.
      const missing = Object.keys(series).length === 0 ? "waiting for samples" : "not available from this cluster";
      draw(canvas, Array.isArray(points) ? points : null, bytes, missing);
    } catch (e) {
      // The broker may be restarting; the next round tries again.
    }
  }
  poll();
  setInterval(poll, CHART_MS);
}

function fmt(v, bytes) {
  if (!bytes) return String(Math.round(v * 10) / 10);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (Math.round(v * 10) / 10) + " " + units[i];
}

function draw(canvas, points, bytes, missing) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 18;
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = "#333";
  ctx.font = "12px sans-serif";
  if (points === null) {
    canvas.dataset.points = "0";
    ctx.fillText(missing, 4, 12);
    return;
  }
  const vals = points.map(p => p.v);
  const top = Math.max(1, ...vals);
  ctx.strokeStyle = "#ccc";
  ctx.beginPath(); ctx.moveTo(0, h - pad); ctx.lineTo(w, h - pad); ctx.stroke();
  ctx.strokeStyle = "#2266cc";
  ctx.lineWidth = 2;
  ctx.beginPath();
  vals.forEach((v, i) => {
    const x = (i / (CHART_POINTS - 1)) * w;
    const y = h - pad - (v / top) * (h - 2 * pad);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = "#333";
  const cur = vals.length ? vals[vals.length - 1] : 0;
  canvas.dataset.now = String(cur);
  canvas.dataset.points = String(vals.length);
  ctx.fillText("now " + fmt(cur, bytes) + ", max " + fmt(top, bytes), 4, 12);
}

// Forms with data-post send their fields as JSON; data-kind says how.
function bodyOf(form) {
  const f = Object.fromEntries(new FormData(form));
  switch (form.dataset.kind) {
    case "produce": {
      const body = { key: f.key === "" ? null : f.key, value: f.value };
      if (f.partition !== "") body.partition = Number(f.partition);
      return body;
    }
    case "config":
      return f.value === "" ? { delete: [f.name] } : { set: { [f.name]: f.value } };
    case "create-topic": {
      const body = { name: f.name };
      if (f.partitions !== "") body.partitions = Number(f.partitions);
      if (f.replicationFactor !== "") body.replicationFactor = Number(f.replicationFactor);
      if (f.cleanup !== "") body.configs = { "cleanup.policy": f.cleanup };
      return body;
    }
    case "delete-topic":
      return { confirm: f.confirm };
    case "reset":
      return { to: f.to, offset: Number(f.offset || 0), timestamp: f.timestamp, confirm: f.confirm };
  }
  return f;
}

function wireForms() {
  for (const form of document.querySelectorAll("form[data-post]")) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const out = form.querySelector("output");
      if (form.dataset.kind === "reset" && !confirm("Reset the committed offsets of this group?")) return;
      if (form.dataset.kind === "delete-topic" && !confirm("Delete this topic and all its records?")) return;
      try {
        const resp = await fetch(form.dataset.post, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(bodyOf(form)),
        });
        const text = await resp.text();
        let msg = text;
        try { const j = JSON.parse(text); msg = j.error || JSON.stringify(j); } catch (e) { /* not JSON */ }
        out.textContent = (resp.ok ? "done: " : "failed: ") + msg;
        out.className = resp.ok ? "ok" : "error";
      } catch (e) {
        out.textContent = "failed: " + e;
        out.className = "error";
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  refreshLive();
  document.querySelectorAll("canvas[data-series]").forEach(startChart);
  wireForms();
});
