// Runnel console: live refresh of server-rendered sections, live charts,
// and the write forms. No dependencies; served from the console itself.
"use strict";

const REFRESH_MS = 5000;
const CHART_MS = 2000;
const CHART_POINTS = 60;

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

// A canvas with data-chart polls that JSON URL and plots data-field, or
// its rate per second with data-rate.
function startChart(canvas) {
  const url = canvas.dataset.chart, field = canvas.dataset.field, rate = canvas.dataset.rate === "true";
  const points = [];
  let last = null;
  async function poll() {
    if (document.hidden) return;
    try {
      const resp = await fetch(url);
      if (!resp.ok) return;
      const v = (await resp.json())[field];
      if (typeof v !== "number") return;
      const now = Date.now();
      if (rate) {
        if (last) points.push(Math.max(0, (v - last.v) / ((now - last.t) / 1000)));
        last = { v, t: now };
      } else {
        points.push(v);
      }
      if (points.length > CHART_POINTS) points.shift();
      draw(canvas, points);
    } catch (e) {
      // Skip a point; the chart shows the gap as a flat line.
    }
  }
  poll();
  setInterval(poll, CHART_MS);
}

function draw(canvas, points) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 18;
  ctx.clearRect(0, 0, w, h);
  const top = Math.max(1, ...points);
  ctx.strokeStyle = "#ccc";
  ctx.beginPath(); ctx.moveTo(0, h - pad); ctx.lineTo(w, h - pad); ctx.stroke();
  ctx.strokeStyle = "#2266cc";
  ctx.lineWidth = 2;
  ctx.beginPath();
  points.forEach((p, i) => {
    const x = (i / (CHART_POINTS - 1)) * w;
    const y = h - pad - (p / top) * (h - 2 * pad);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = "#333";
  ctx.font = "12px sans-serif";
  const cur = points.length ? points[points.length - 1] : 0;
  ctx.fillText("now " + (Math.round(cur * 10) / 10) + ", max " + (Math.round(top * 10) / 10), 4, 12);
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
  document.querySelectorAll("canvas[data-chart]").forEach(startChart);
  wireForms();
});
