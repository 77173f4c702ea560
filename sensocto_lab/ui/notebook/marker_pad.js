// Marker pad: one button per preset (keys 1-9), a text field (Enter marks it), the last
// marks. A press sets the `press` trait to {type: "mark", label, n} (JSON); Python
// records it (marker_pad.py).
function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "sl-marker-pad";
  root.tabIndex = 0;
  root.style.cssText = "font-family: sans-serif; font-size: 13px; outline: none;";
  const title = document.createElement("div");
  title.style.cssText = "font-weight: bold;";
  const buttons = document.createElement("div");
  const field = document.createElement("input");
  field.type = "text";
  field.placeholder = "free text, Enter to mark";
  field.dataset.role = "free-text";
  const go = document.createElement("button");
  go.textContent = "mark";
  const status = document.createElement("div");
  status.dataset.role = "status";
  status.style.cssText = "color: #555; font-size: 11px;";
  const row = document.createElement("div");
  row.append(field, go);
  root.append(title, buttons, row, status);
  el.appendChild(root);

  // Through a synced trait, not model.send: Panel's AnyWidget shim has no send.
  let presses = 0;
  const send = (label) => {
    const text = String(label || "").trim();
    if (!text) return;
    presses += 1;
    model.set("press", JSON.stringify({ type: "mark", label: text, n: presses, at: Date.now() }));
    model.save_changes();
  };

  function draw() {
    title.textContent = model.get("title") || "";
    const presets = model.get("presets") || [];
    buttons.replaceChildren(...presets.map((p, i) => {
      const b = document.createElement("button");
      b.textContent = i < 9 ? `${i + 1} ${p}` : p;
      b.dataset.role = "preset";
      b.addEventListener("click", () => send(p));
      return b;
    }));
    const error = model.get("error") || "";
    const recent = model.get("recent") || [];
    status.textContent = error
      ? `refused: ${error}`
      : `${model.get("count") || 0} marked${recent.length ? `; last: ${recent.join(", ")}` : ""}`;
    status.style.color = error ? "#d62728" : "#555";
  }

  field.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { send(field.value); field.value = ""; }
    e.stopPropagation();  // digits typed in the field are text, not shortcuts
  });
  go.addEventListener("click", () => { send(field.value); field.value = ""; });
  root.addEventListener("keydown", (e) => {
    const presets = model.get("presets") || [];
    const n = Number(e.key);
    if (Number.isInteger(n) && n >= 1 && n <= Math.min(9, presets.length)) send(presets[n - 1]);
  });

  const schedule = frameScheduler(draw);
  for (const name of ["presets", "title", "recent", "error", "count"]) {
    model.on(`change:${name}`, schedule);
  }
  draw();
}

export default { render };
