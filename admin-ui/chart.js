// Per-minute charts drawn as SVG: a handful of series over 60 points does not need a
// charting library, and drawing them here keeps the console dependency-free.

const NS = "http://www.w3.org/2000/svg";
const PAD = { top: 8, right: 8, bottom: 22, left: 34 };

function el(name, attrs = {}, parent) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

/** A whole-number step (1, 2, 5, 10, 20, 50, …) giving at most 5 grid lines, and the top. */
function scale(max) {
  for (let magnitude = 1; ; magnitude *= 10) {
    for (const m of [1, 2, 5]) {
      const step = m * magnitude;
      if (Math.max(max, 1) / step <= 5) return { top: Math.max(1, Math.ceil(max / step)) * step, step };
    }
  }
}

function minuteLabel(ms) {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

/**
 * Draws `series` ([{name, label, perMinute}]) into `container`, minutes starting at
 * `from` (ms). `kind` is "line" or "bar". Hovering shows the values of a minute.
 */
export function drawChart(container, { from, series, kind = "line" }) {
  const width = Math.max(container.clientWidth, 200);
  const height = Math.max(container.clientHeight, 80);
  const points = series[0]?.perMinute.length ?? 0;
  const max = Math.max(0, ...series.flatMap((s) => s.perMinute));
  const { top, step } = scale(max);
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  const x = (i) => PAD.left + (points <= 1 ? 0 : (i / (points - 1)) * plotW);
  const y = (v) => PAD.top + plotH - (v / top) * plotH;

  container.replaceChildren();
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" }, container);
  const total = series.reduce((sum, s) => sum + s.perMinute.reduce((a, b) => a + b, 0), 0);
  el("title", {}, svg).textContent = `${series.map((s) => s.label).join(", ")}: ${total} in the last hour`;

  for (let v = 0; v <= top; v += step) {
    el("line", { class: "grid", x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v) }, svg);
    el("text", { class: "axis", x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" }, svg).textContent =
      v;
  }
  for (let i = 0; i < points; i += 15) {
    const label = el("text", { class: "axis", x: x(i), y: height - 6, "text-anchor": i === 0 ? "start" : "middle" }, svg);
    label.textContent = minuteLabel(from + i * 60_000);
  }
  el("text", { class: "axis", x: x(points - 1), y: height - 6, "text-anchor": "end" }, svg).textContent = "now";

  if (kind === "bar") {
    const barW = Math.max(1, plotW / points - 2);
    series[0].perMinute.forEach((v, i) => {
      if (v > 0) el("rect", { class: "bar", x: x(i) - barW / 2, y: y(v), width: barW, height: y(0) - y(v), rx: 1.5 }, svg);
    });
  } else {
    for (const s of series) {
      const d = s.perMinute.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join("");
      el("path", { class: "series", d, stroke: `var(--s-${s.name})`, "data-series": s.name }, svg);
    }
  }

  const cursor = el("line", { class: "cursor", y1: PAD.top, y2: PAD.top + plotH, visibility: "hidden" }, svg);
  const tip = document.createElement("div");
  tip.className = "tip";
  tip.hidden = true;
  container.appendChild(tip);
  svg.addEventListener("pointermove", (event) => {
    const box = svg.getBoundingClientRect();
    const px = ((event.clientX - box.left) / box.width) * width;
    const i = Math.round(((px - PAD.left) / plotW) * (points - 1));
    if (i < 0 || i >= points) return;
    cursor.setAttribute("x1", x(i));
    cursor.setAttribute("x2", x(i));
    cursor.setAttribute("visibility", "visible");
    const rows = series.map((s) => `<div>${s.label}: <b>${s.perMinute[i]}</b></div>`).join("");
    tip.innerHTML = `<div class="muted">${minuteLabel(from + i * 60_000)}</div>${rows}`;
    tip.hidden = false;
    const left = (x(i) / width) * box.width;
    tip.style.left = `${Math.min(left + 12, box.width - tip.offsetWidth)}px`;
    tip.style.top = "4px";
  });
  svg.addEventListener("pointerleave", () => {
    cursor.setAttribute("visibility", "hidden");
    tip.hidden = true;
  });
}
