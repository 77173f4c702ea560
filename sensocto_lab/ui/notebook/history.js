// Historical R(t) with a surrogate band: the band (e.g. 5th..95th percentile of R over
// surrogates) shaded, R drawn on top, stretches above the band's upper edge marked.
// Reads t (s from start), r, band_lo, band_hi, band_label, title, px_width, px_height.
function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "sl-history";
  root.style.cssText = "font-family: sans-serif;";
  const title = document.createElement("div");
  title.style.cssText = "font-weight: bold; font-size: 13px;";
  root.appendChild(title);
  const holder = document.createElement("div");
  root.appendChild(holder);
  const legend = document.createElement("div");
  legend.style.cssText = "font-size: 11px; color: #444;";
  root.appendChild(legend);
  el.appendChild(root);

  function draw() {
    const W = model.get("px_width"), H = model.get("px_height");
    const { canvas, ctx } = hidpiCanvas(W, H);
    canvas.dataset.role = "history";
    holder.replaceChildren(canvas);
    title.textContent = model.get("title") || "";
    const t = f32(model.get("t")), r = f32(model.get("r"));
    const lo = f32(model.get("band_lo")), hi = f32(model.get("band_hi"));
    canvas.dataset.points = String(r.length);
    const box = { x: 46, y: 8, w: W - 58, h: H - 30 };
    drawAxes(ctx, box, 0, 1, "time (s)", "R");
    if (t.length < 1) return;
    const t0 = t[0], t1 = t[t.length - 1] > t0 ? t[t.length - 1] : t0 + 1;
    const X = (s) => box.x + box.w * (s - t0) / (t1 - t0);
    const Y = (v) => box.y + box.h * (1 - v);
    ctx.save();
    ctx.beginPath();
    ctx.rect(box.x, box.y, box.w, box.h);
    ctx.clip();
    const band = hi.length === t.length;
    if (band) {
      ctx.fillStyle = "rgba(127,127,127,0.3)";
      ctx.beginPath();
      for (let i = 0; i < t.length; i++) ctx[i ? "lineTo" : "moveTo"](X(t[i]), Y(hi[i]));
      for (let i = t.length - 1; i >= 0; i--) {
        ctx.lineTo(X(t[i]), Y(lo.length === t.length ? lo[i] : 0));
      }
      ctx.closePath();
      ctx.fill();
      // Where R rises above the band: a mark along the top.
      ctx.fillStyle = "rgba(214,39,40,0.6)";
      let above = 0;
      for (let i = 0; i < t.length - 1; i++) {
        if (r[i] > hi[i]) {
          above++;
          ctx.fillRect(X(t[i]), box.y, Math.max(1, X(t[i + 1]) - X(t[i])), 4);
        }
      }
      canvas.dataset.above = String(above);
    }
    ctx.strokeStyle = "#1f77b4";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    for (let i = 0; i < t.length; i++) ctx[i ? "lineTo" : "moveTo"](X(t[i]), Y(r[i]));
    ctx.stroke();
    ctx.restore();
    canvas.dataset.events = String(
      drawEvents(ctx, box, model.get("events"), model.get("t_ref") || 0, X));
    ctx.fillStyle = "#444";
    ctx.font = "10px sans-serif";
    ctx.textAlign = "left";
    ctx.fillText(`${t0.toFixed(0)}`, box.x, box.y + box.h + 12);
    ctx.textAlign = "right";
    ctx.fillText(`${t1.toFixed(0)}`, box.x + box.w, box.y + box.h + 12);
    legend.textContent = band
      ? `blue: R(t); grey: ${model.get("band_label")}; red marks: R above the band`
      : "blue: R(t)";
  }

  const schedule = frameScheduler(draw);
  for (const name of ["t", "r", "band_lo", "band_hi", "band_label", "title",
                      "px_width", "px_height", "events", "t_ref"]) {
    model.on(`change:${name}`, schedule);
  }
  draw();
}

export default { render };
