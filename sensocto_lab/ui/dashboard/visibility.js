// Visibility of one dashboard card, for attention (docs/architecture.md#dashboards).
//
// Wraps the card (the `object` child), watches it with an IntersectionObserver
// (how much of it is in the viewport) and pointer enter/leave (focus), and sends
// {ratio, pointer} to Python at most every `interval_ms` (100 ms), only when
// something changed. A click on the card (not on a control inside it) sends
// {click: true} (the dashboard opens its focus view). Works as a panel.custom.JSComponent (model.send_msg,
// model.get_child); in an anywidget the same render falls back to model.send.

export function render({ model, el }) {
  const child = model.get_child ? model.get_child("object") : null;
  if (child) el.append(child);
  const interval = model.interval_ms || 100;
  let ratio = 0;
  let pointer = false;
  let sent = null;
  let lastSend = -Infinity;
  let timer = null;

  const send = () => {
    timer = null;
    const key = `${ratio}|${pointer}`;
    if (key === sent) return;
    sent = key;
    lastSend = performance.now();
    const msg = { ratio, pointer };
    if (model.send_msg) model.send_msg(msg);
    else model.send(msg);
  };
  const schedule = () => {
    if (timer !== null) return;
    const wait = lastSend + interval - performance.now();
    timer = setTimeout(send, Math.max(0, wait));
  };

  const observer = new IntersectionObserver(
    (entries) => {
      for (const entry of entries) ratio = Math.round(entry.intersectionRatio * 100) / 100;
      schedule();
    },
    { threshold: [0, 0.01, 0.25, 0.5, 0.75, 1] },
  );
  observer.observe(el);
  const enter = () => { pointer = true; schedule(); };
  const leave = () => { pointer = false; schedule(); };
  el.addEventListener("pointerenter", enter);
  el.addEventListener("pointerleave", leave);
  const controls = new Set(["SELECT", "OPTION", "BUTTON", "INPUT", "TEXTAREA"]);
  const click = (event) => {
    if (event.composedPath().some((n) => n.tagName && controls.has(n.tagName))) return;
    const msg = { click: true };
    if (model.send_msg) model.send_msg(msg);
    else model.send(msg);
  };
  el.addEventListener("click", click);

  const cleanup = () => {
    observer.disconnect();
    el.removeEventListener("pointerenter", enter);
    el.removeEventListener("pointerleave", leave);
    el.removeEventListener("click", click);
    if (timer !== null) clearTimeout(timer);
  };
  if (model.on) model.on("remove", cleanup);
  return cleanup;
}
