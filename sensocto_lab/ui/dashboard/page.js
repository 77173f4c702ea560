// Page-level state for a dashboard session (docs/architecture.md#dashboards).
//
// Reports document.visibilityState ("visible" / "hidden") on every change, and the
// page's render lag: each server flush sets `stamp` (server wall clock, ms); when
// the next frame is painted we take paintTime - stamp. Clocks of server and browser
// may differ, so the lag is that difference minus its smallest value seen (the
// offset plus the fastest delivery): what remains is how far behind the page is.
// Lag reports go out every `report_ms`, as the mean lag over that period (a mean:
// one late frame on a busy machine is jitter, a page that keeps falling behind is not).
// Shortcut keys pressed outside a text field go to Python as {key}: "m" (marker),
// "Escape" (close the focus view); held keys repeat, the server rate-limits.

export function render({ model, el }) {
  const send = (msg) => (model.send_msg ? model.send_msg(msg) : model.send(msg));
  const onVisibility = () => send({ visibility: document.visibilityState });
  document.addEventListener("visibilitychange", onVisibility);
  onVisibility();

  const typing = new Set(["INPUT", "TEXTAREA", "SELECT"]);
  const onKey = (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key !== "m" && event.key !== "Escape") return;
    if (event.composedPath().some((n) => n.tagName && typing.has(n.tagName))) return;
    send({ key: event.key });
  };
  document.addEventListener("keydown", onKey);

  let best = Infinity;
  let total = 0;
  let count = 0;
  let pending = false;
  const onStamp = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      const delay = Date.now() - model.stamp;
      best = Math.min(best, delay);
      total += delay - best;
      count += 1;
    });
  };
  if (model.on) model.on("stamp", onStamp);
  const report = setInterval(() => {
    if (count === 0) return;
    send({ lag_ms: total / count });
    total = 0;
    count = 0;
  }, model.report_ms || 500);

  const cleanup = () => {
    document.removeEventListener("visibilitychange", onVisibility);
    document.removeEventListener("keydown", onKey);
    clearInterval(report);
  };
  if (model.on) model.on("remove", cleanup);
  el.style.display = "none";
  return cleanup;
}
