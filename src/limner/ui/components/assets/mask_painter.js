// limner's mask painter: paint over the start picture; white = repaint, black = keep.
// Mounted by limner/ui/components/mask_painter.py through st.components.v2 (no build step, no
// dependencies). `data` = {image: data URL, width, height, size: display width}. The mask goes back
// to Python as the state value `mask` (a PNG data URL at the picture's own size) after each stroke,
// invert or clear. Strokes survive reruns while the picture stays the same.
export default function (component) {
  const { data, parentElement, setStateValue } = component;
  const host = parentElement;
  const key = data.image.length + ":" + data.image.slice(-64);
  let state = host.__limnerMask;
  if (!state || state.key !== key) {
    if (state && state.cleanup) state.cleanup();
    state = build(host, data, key, setStateValue);
    host.__limnerMask = state;
  }
  state.setStateValue = setStateValue;
  return () => {};
}

function build(host, data, key, setStateValue) {
  host.querySelectorAll(".lm-mask").forEach((node) => node.remove());
  const root = document.createElement("div");
  root.className = "lm-mask";
  root.setAttribute("data-testid", "limner-mask-painter");
  root.innerHTML = `
    <div class="lm-tools" role="toolbar" aria-label="Mask tools">
      <label>Brush size <input type="range" min="2" max="128" value="${data.brush || 24}" aria-label="Brush size"></label>
      <button type="button" data-tool="brush" aria-pressed="true">Brush</button>
      <button type="button" data-tool="eraser" aria-pressed="false">Eraser</button>
      <button type="button" data-action="invert">Invert</button>
      <button type="button" data-action="clear">Clear</button>
    </div>
    <div class="lm-stage"><img alt="Start picture" draggable="false"><canvas aria-label="Paint the mask here"></canvas></div>
    <p class="lm-hint">Paint where the picture should change (shown in red). White in the mask = repaint, black = keep.</p>`;
  host.appendChild(root);
  const img = root.querySelector("img");
  const view = root.querySelector("canvas");
  const range = root.querySelector("input[type=range]");
  const mask = document.createElement("canvas"); // the real mask, at the picture's own size
  mask.width = data.width;
  mask.height = data.height;
  const mctx = mask.getContext("2d");
  mctx.fillStyle = "#000";
  mctx.fillRect(0, 0, mask.width, mask.height);
  // The stage is as wide as the column allows (up to data.size px) and keeps the picture's shape;
  // the canvas covers the picture exactly, and brush sizes are in screen pixels.
  root.querySelector(".lm-stage").style.width = `min(100%, ${data.size || 512}px)`;
  view.width = data.width;
  view.height = data.height;
  img.src = data.image;
  const scale = () => view.getBoundingClientRect().width / data.width || 1;
  const vctx = view.getContext("2d");
  const state = { key, tool: "brush", setStateValue, cleanup: null, drawing: false, last: null };

  function redraw() {
    // the overlay: the mask's white as translucent red over the picture
    vctx.clearRect(0, 0, view.width, view.height);
    const pixels = mctx.getImageData(0, 0, mask.width, mask.height);
    const overlay = vctx.createImageData(mask.width, mask.height);
    for (let i = 0; i < pixels.data.length; i += 4) {
      const on = pixels.data[i] > 127;
      overlay.data[i] = 255;
      overlay.data[i + 1] = 40;
      overlay.data[i + 2] = 40;
      overlay.data[i + 3] = on ? 140 : 0;
    }
    vctx.putImageData(overlay, 0, 0);
  }
  function send() {
    state.setStateValue("mask", mask.toDataURL("image/png"));
  }
  function point(event) {
    const box = view.getBoundingClientRect();
    return [((event.clientX - box.left) / box.width) * mask.width, ((event.clientY - box.top) / box.height) * mask.height];
  }
  function stroke(from, to) {
    mctx.strokeStyle = mctx.fillStyle = state.tool === "eraser" ? "#000" : "#fff";
    mctx.lineWidth = Number(range.value) / scale();
    mctx.lineCap = mctx.lineJoin = "round";
    mctx.beginPath();
    mctx.moveTo(from[0], from[1]);
    mctx.lineTo(to[0], to[1]);
    mctx.stroke();
    redraw();
  }
  view.addEventListener("pointerdown", (event) => {
    state.drawing = true;
    state.last = point(event);
    stroke(state.last, state.last);
    view.setPointerCapture(event.pointerId);
  });
  view.addEventListener("pointermove", (event) => {
    if (!state.drawing) return;
    const next = point(event);
    stroke(state.last, next);
    state.last = next;
  });
  const finish = () => {
    if (!state.drawing) return;
    state.drawing = false;
    send();
  };
  view.addEventListener("pointerup", finish);
  view.addEventListener("pointercancel", finish);
  root.querySelectorAll("[data-tool]").forEach((button) => {
    button.addEventListener("click", () => {
      state.tool = button.dataset.tool;
      root.querySelectorAll("[data-tool]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
    });
  });
  root.querySelector("[data-action=invert]").addEventListener("click", () => {
    const pixels = mctx.getImageData(0, 0, mask.width, mask.height);
    for (let i = 0; i < pixels.data.length; i += 4) {
      const value = pixels.data[i] > 127 ? 0 : 255;
      pixels.data[i] = pixels.data[i + 1] = pixels.data[i + 2] = value;
      pixels.data[i + 3] = 255;
    }
    mctx.putImageData(pixels, 0, 0);
    redraw();
    send();
  });
  root.querySelector("[data-action=clear]").addEventListener("click", () => {
    mctx.fillStyle = "#000";
    mctx.fillRect(0, 0, mask.width, mask.height);
    redraw();
    state.setStateValue("mask", null);
  });
  redraw();
  state.cleanup = () => root.remove();
  return state;
}
