// Shared helpers, prepended to each widget's ESM (see _wire.py).
// The same code runs under anywidget (JupyterLab) and Panel's AnyWidgetComponent.

// A float32 array from what a Bytes traitlet/param arrives as: DataView, ArrayBuffer,
// a typed array, a base64 string, or a plain array.
function f32(v) {
  if (v == null) return new Float32Array(0);
  if (v instanceof Float32Array) return v;
  if (typeof v === "string") {
    const bin = atob(v);
    const u8 = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
    return new Float32Array(u8.buffer, 0, u8.length >> 2);
  }
  let buffer, offset, length;
  if (v instanceof ArrayBuffer) {
    buffer = v; offset = 0; length = v.byteLength;
  } else if (ArrayBuffer.isView(v)) {
    buffer = v.buffer; offset = v.byteOffset; length = v.byteLength;
  } else if (Array.isArray(v)) {
    return Float32Array.from(v);
  } else {
    return new Float32Array(0);
  }
  const n = length >> 2;
  if (offset % 4 === 0) return new Float32Array(buffer, offset, n);
  return new Float32Array(buffer.slice(offset, offset + n * 4));  // unaligned: copy
}

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

function colour(i) { return PALETTE[i % PALETTE.length]; }

// An HiDPI canvas of CSS size w x h and its 2-D context, scaled to CSS pixels.
function hidpiCanvas(w, h) {
  const canvas = document.createElement("canvas");
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);
  return { canvas, ctx };
}

// Redraw at most once per animation frame, whatever the number of model changes.
function frameScheduler(draw) {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  };
}

// Min/max of finite values; [lo, hi] fallback when there are none or all are equal.
function extent(arrays, lo, hi) {
  let mn = Infinity, mx = -Infinity;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++) {
      const x = a[i];
      if (x < mn) mn = x;
      if (x > mx) mx = x;
    }
  }
  if (!(mn <= mx)) return [lo, hi];
  if (mn === mx) return [mn - 0.5, mx + 0.5];
  return [mn, mx];
}

// Frame with y ticks and x label for a time-series plot area.
function drawAxes(ctx, box, ylo, yhi, xlabel, ylabel) {
  ctx.save();
  ctx.strokeStyle = "#999";
  ctx.lineWidth = 1;
  ctx.strokeRect(box.x, box.y, box.w, box.h);
  ctx.fillStyle = "#444";
  ctx.font = "10px sans-serif";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  // Enough decimals to tell the three ticks apart, no more.
  const digits = Math.max(0, Math.min(6, 2 - Math.floor(Math.log10(yhi - ylo || 1))));
  for (const f of [0, 0.5, 1]) {
    const v = ylo + f * (yhi - ylo);
    const y = box.y + box.h - f * box.h;
    const shown = Math.abs(v) < 0.5 * 10 ** -digits ? 0 : v;  // no "-0.00"
    ctx.fillText(shown.toFixed(digits), box.x - 3, y);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  if (xlabel) ctx.fillText(xlabel, box.x + box.w / 2, box.y + box.h + 3);
  if (ylabel) {
    ctx.translate(2, box.y + box.h / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(ylabel, 0, 0);
  }
  ctx.restore();
}

// Markers and conditions (the `events` trait, see _events.py) over a time axis:
// conditions as shaded labelled spans, markers and novelty as labelled vertical lines.
// `X(s)` maps seconds relative to `tRef` (the widget's reference, epoch s) to pixels;
// a running condition (d < 0) reaches the right edge.
function drawEvents(ctx, box, events, tRef, X) {
  if (!Array.isArray(events) || events.length === 0) return 0;
  let drawn = 0;
  ctx.save();
  ctx.beginPath();
  ctx.rect(box.x, box.y, box.w, box.h);
  ctx.clip();
  ctx.font = "10px sans-serif";
  ctx.textBaseline = "top";
  const labels = [];
  for (const ev of events) {
    if (!ev || typeof ev.t !== "number") continue;
    const x0 = X(ev.t - tRef);
    if (ev.kind === "condition") {
      const x1 = ev.d < 0 ? box.x + box.w : X(ev.t + ev.d - tRef);
      if (x1 < box.x || x0 > box.x + box.w) continue;
      let i = labels.indexOf(ev.label);
      if (i < 0) { labels.push(ev.label); i = labels.length - 1; }
      ctx.fillStyle = colour(i + 3);
      ctx.globalAlpha = 0.12;
      ctx.fillRect(x0, box.y, Math.max(1, x1 - x0), box.h);
      ctx.globalAlpha = 1;
      ctx.fillStyle = "#333";
      ctx.textAlign = "left";
      ctx.fillText(String(ev.label), Math.max(x0, box.x) + 2, box.y + box.h - 12);
    } else {
      if (x0 < box.x || x0 > box.x + box.w) continue;
      ctx.strokeStyle = ev.kind === "novelty" ? "#d62728" : "#333";
      ctx.setLineDash(ev.kind === "novelty" ? [2, 2] : [4, 3]);
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(x0, box.y);
      ctx.lineTo(x0, box.y + box.h);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = ctx.strokeStyle;
      ctx.textAlign = "left";
      ctx.fillText(String(ev.label), x0 + 2, box.y + 2);
    }
    drawn++;
  }
  ctx.restore();
  return drawn;
}
