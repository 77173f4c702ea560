// Live sensor strip plot: one lane per channel on a canvas, newest at the right.
// Reads times/values (float32 bytes, channels concatenated), offsets, channels, units,
// t_span_s, title, px_width, lane_px, events and t_ref (markers, see _events.py).
function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "sl-strip";
  root.style.cssText = "font-family: sans-serif;";
  const title = document.createElement("div");
  title.style.cssText = "font-weight: bold; font-size: 13px;";
  root.appendChild(title);
  const holder = document.createElement("div");
  root.appendChild(holder);
  el.appendChild(root);

  let canvas = null, ctx = null, W = 0, H = 0;

  function ensureCanvas(nLanes) {
    const w = model.get("px_width"), h = Math.max(1, nLanes) * model.get("lane_px") + 18;
    if (canvas && w === W && h === H) return;
    W = w; H = h;
    ({ canvas, ctx } = hidpiCanvas(W, H));
    canvas.dataset.role = "strip";
    holder.replaceChildren(canvas);
  }

  function draw() {
    title.textContent = model.get("title") || "";
    const names = model.get("channels") || [];
    const units = model.get("units") || [];
    const offsets = model.get("offsets") || [];
    const t = f32(model.get("times")), v = f32(model.get("values"));
    const span = model.get("t_span_s") || 10;
    ensureCanvas(names.length);
    canvas.dataset.channels = String(names.length);
    canvas.dataset.points = String(v.length);
    ctx.clearRect(0, 0, W, H);
    const lane = model.get("lane_px");
    let marks = 0;
    for (let c = 0; c < names.length; c++) {
      const a = offsets[c] || 0, b = offsets[c + 1] || a;
      const tc = t.subarray(a, b), vc = v.subarray(a, b);
      const box = { x: 46, y: c * lane + 4, w: W - 54, h: lane - 10 };
      const [lo, hi] = extent([vc], -1, 1);
      drawAxes(ctx, box, lo, hi, "", "");
      ctx.save();
      ctx.fillStyle = colour(c);
      ctx.font = "11px sans-serif";
      ctx.textBaseline = "top";
      ctx.fillText(`${names[c]}${units[c] ? ` (${units[c]})` : ""}`, box.x + 4, box.y + 2);
      ctx.beginPath();
      ctx.rect(box.x, box.y, box.w, box.h);
      ctx.clip();
      ctx.strokeStyle = colour(c);
      ctx.lineWidth = 1.2;
      ctx.beginPath();
      for (let i = 0; i < tc.length; i++) {
        const x = box.x + box.w * (1 + tc[i] / span);
        const y = box.y + box.h * (1 - (vc[i] - lo) / (hi - lo));
        if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      }
      ctx.stroke();
      ctx.restore();
      marks += drawEvents(ctx, box, model.get("events"), model.get("t_ref") || 0,
                          (s) => box.x + box.w * (1 + s / span));
    }
    canvas.dataset.events = String(marks);
    ctx.fillStyle = "#444";
    ctx.font = "10px sans-serif";
    ctx.textAlign = "center";
    ctx.fillText(`time (last ${span.toFixed(0)} s)`, W / 2, H - 12);
  }

  const schedule = frameScheduler(draw);
  for (const name of ["times", "values", "offsets", "channels", "units", "title",
                      "t_span_s", "px_width", "lane_px", "events", "t_ref"]) {
    model.on(`change:${name}`, schedule);
  }
  draw();
}

export default { render };
