// Live group synchrony: an R gauge, one dot per participant on the phase circle with the
// mean vector, and the recent R(t) strip. Reads r, r_t, r_v, phases, labels, title.
const SVGNS = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "sl-sync";
  root.style.cssText = "font-family: sans-serif; display: flex; flex-wrap: wrap; " +
    "align-items: center; gap: 8px;";
  const title = document.createElement("div");
  title.style.cssText = "width: 100%; font-weight: bold; font-size: 13px;";
  root.appendChild(title);

  // Gauge: a half ring filled to R.
  const gauge = svg("svg", { width: 150, height: 100, viewBox: "-75 -80 150 100",
                             "data-role": "gauge" });
  const arc = (r) => {
    const a = Math.PI * (1 - Math.max(0, Math.min(1, r)));
    return `M -60 0 A 60 60 0 0 1 ${60 * Math.cos(a)} ${-60 * Math.sin(a)}`;
  };
  gauge.appendChild(svg("path", { d: arc(1), stroke: "#ddd", "stroke-width": 14, fill: "none" }));
  const fill = svg("path", { d: arc(0), stroke: "#2ca02c", "stroke-width": 14, fill: "none",
                             class: "sl-gauge-fill" });
  gauge.appendChild(fill);
  const value = svg("text", { x: 0, y: -8, "text-anchor": "middle", "font-size": 20,
                              class: "sl-gauge-value" });
  gauge.appendChild(value);
  const caption = svg("text", { x: 0, y: 14, "text-anchor": "middle", "font-size": 10,
                                fill: "#555" });
  caption.textContent = "Kuramoto R";
  gauge.appendChild(caption);
  root.appendChild(gauge);

  // Phase circle: unit circle, a dot per participant, arrow for the mean vector.
  const circle = svg("svg", { width: 150, height: 150, viewBox: "-75 -75 150 150",
                              "data-role": "phase-circle" });
  circle.appendChild(svg("circle", { cx: 0, cy: 0, r: 60, stroke: "#999", fill: "none" }));
  const mean = svg("line", { x1: 0, y1: 0, x2: 0, y2: 0, stroke: "#333",
                             "stroke-width": 2, class: "sl-mean" });
  circle.appendChild(mean);
  const dots = svg("g", { class: "sl-dots" });
  circle.appendChild(dots);
  root.appendChild(circle);

  // R(t): recent history on a canvas, 0..1.
  const W = 320, H = 140;
  const { canvas, ctx } = hidpiCanvas(W, H);
  canvas.dataset.role = "r-strip";
  root.appendChild(canvas);
  el.appendChild(root);

  function drawStrip() {
    const t = f32(model.get("r_t")), v = f32(model.get("r_v"));
    const span = model.get("t_span_s") || 60;
    ctx.clearRect(0, 0, W, H);
    const box = { x: 42, y: 6, w: W - 50, h: H - 24 };
    drawAxes(ctx, box, 0, 1, `last ${span.toFixed(0)} s`, "R");
    if (t.length < 1) return;
    ctx.save();
    ctx.beginPath();
    ctx.rect(box.x, box.y, box.w, box.h);
    ctx.clip();
    ctx.strokeStyle = "#2ca02c";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    for (let i = 0; i < t.length; i++) {
      const x = box.x + box.w * (1 + t[i] / span);
      const y = box.y + box.h * (1 - v[i]);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    }
    ctx.stroke();
    ctx.restore();
    const marks = drawEvents(ctx, box, model.get("events"), model.get("t_ref") || 0,
                             (s) => box.x + box.w * (1 + s / span));
    canvas.dataset.events = String(marks);
  }

  function draw() {
    title.textContent = model.get("title") || "";
    const r = model.get("r");
    fill.setAttribute("d", arc(r));
    value.textContent = `R = ${r.toFixed(2)}`;
    gauge.dataset.r = r.toFixed(3);

    const phases = f32(model.get("phases"));
    const labels = model.get("labels") || [];
    dots.replaceChildren();
    let cx = 0, cy = 0;
    for (let i = 0; i < phases.length; i++) {
      const x = 60 * Math.cos(phases[i]), y = -60 * Math.sin(phases[i]);
      cx += x; cy += y;
      const dot = svg("circle", { cx: x, cy: y, r: 6, fill: colour(i), class: "sl-dot" });
      const tip = svg("title");
      tip.textContent = labels[i] || `participant ${i + 1}`;
      dot.appendChild(tip);
      dots.appendChild(dot);
    }
    const n = Math.max(1, phases.length);
    mean.setAttribute("x2", cx / n);
    mean.setAttribute("y2", cy / n);
    circle.dataset.dots = String(phases.length);
    drawStrip();
  }

  const schedule = frameScheduler(draw);
  for (const name of ["r", "r_t", "r_v", "phases", "labels", "title", "t_span_s",
                      "events", "t_ref"]) {
    model.on(`change:${name}`, schedule);
  }
  draw();
}

export default { render };
