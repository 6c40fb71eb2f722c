"""The web page `fmnist serve` answers at `/`: one self-contained HTML file, no outside assets.

Upload, drag and drop, or draw an item; the page posts it to `predict` and shows the
28x28 image the model saw and the probability of every class.
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fashion-MNIST classifier</title>
<link rel="icon" href="data:,">
<style>
  :root {
    --bg: #f4f5f7; --card: #fff; --ink: #1d2330; --muted: #667085; --line: #e3e6ec;
    --accent: #2f6fed; --accent-soft: #dce7fd; --bar: #c9d2e3; --error: #b42318;
  }
  * { box-sizing: border-box; }
  [hidden] { display: none !important; }
  body {
    margin: 0; background: var(--bg); color: var(--ink);
    font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", sans-serif;
  }
  header { padding: 22px 32px 6px; }
  h1 { margin: 0; font-size: 22px; font-weight: 650; letter-spacing: -0.01em; }
  header p { margin: 4px 0 0; color: var(--muted); }
  main {
    display: grid; grid-template-columns: minmax(320px, 420px) minmax(360px, 1fr);
    gap: 20px; padding: 16px 32px 32px; max-width: 1100px;
  }
  .card {
    background: var(--card); border: 1px solid var(--line); border-radius: 12px;
    padding: 18px 20px; box-shadow: 0 1px 2px rgba(16, 24, 40, .04);
  }
  h2 {
    margin: 0 0 12px; font-size: 13px; font-weight: 650; text-transform: uppercase;
    letter-spacing: .06em; color: var(--muted);
  }
  #drop {
    display: flex; flex-direction: column; align-items: center; justify-content: center;
    gap: 6px; height: 132px; border: 2px dashed var(--bar); border-radius: 10px;
    color: var(--muted); cursor: pointer; text-align: center; transition: .15s;
  }
  #drop:hover, #drop.over { border-color: var(--accent); background: var(--accent-soft);
    color: var(--ink); }
  #drop strong { color: var(--accent); }
  #file { display: none; }
  .or { margin: 16px 0 10px; color: var(--muted); font-size: 13px; text-align: center; }
  #canvas {
    display: block; width: 100%; aspect-ratio: 1; border: 1px solid var(--line);
    border-radius: 10px; background: #fff; touch-action: none; cursor: crosshair;
  }
  .row { display: flex; gap: 8px; margin-top: 10px; align-items: center; }
  button {
    font: inherit; padding: 7px 14px; border-radius: 8px; border: 1px solid var(--line);
    background: #fff; color: var(--ink); cursor: pointer;
  }
  button:hover { border-color: var(--accent); }
  .hint { color: var(--muted); font-size: 13px; }
  .seen { display: flex; gap: 18px; align-items: flex-start; margin-bottom: 18px; }
  .frame { text-align: center; font-size: 12px; color: var(--muted); }
  .frame img, .frame .empty {
    display: block; width: 140px; height: 140px; border-radius: 8px; margin-bottom: 6px;
    border: 1px solid var(--line); object-fit: contain; background: #fafbfc;
  }
  #input-view { image-rendering: pixelated; background: #000; }
  .frame.input { position: relative; }
  .frame img#heat { position: absolute; top: 0; left: 0; background: transparent;
    border-color: transparent; pointer-events: none; }
  .toggle { display: block; font-size: 13px; color: var(--muted); margin-top: 10px; }
  #verdict { flex: 1; min-width: 0; padding-top: 6px; }
  #top-label { font-size: 30px; font-weight: 700; letter-spacing: -0.02em; line-height: 1.1; }
  #top-prob { color: var(--muted); margin-top: 4px; }
  #name { color: var(--muted); font-size: 13px; margin-top: 10px; overflow-wrap: anywhere; }
  #error { color: var(--error); font-weight: 550; margin-top: 10px; min-height: 1.4em; }
  .bars { display: grid; grid-template-columns: 104px 1fr 60px; gap: 7px 10px;
    align-items: center; font-size: 14px; }
  .bars .name { text-align: right; white-space: nowrap; }
  .track { height: 14px; background: #eef1f6; border-radius: 7px; overflow: hidden; }
  .fill { height: 100%; width: 0; background: var(--bar); border-radius: 7px;
    transition: width .25s ease; }
  .track.top .fill { background: var(--accent); }
  .name.top, .pct.top { font-weight: 650; color: var(--ink); }
  .pct { font-variant-numeric: tabular-nums; color: var(--muted); text-align: right; }
  footer { padding: 0 32px 24px; color: var(--muted); font-size: 13px; }
  a { color: var(--accent); }
  @media (max-width: 820px) {
    main { grid-template-columns: minmax(0, 1fr); padding: 12px; }
    header { padding: 18px 14px 4px; }
    footer { padding: 0 14px 20px; }
    .seen { flex-wrap: wrap; gap: 12px; }
    .frame img, .frame .empty { width: 120px; height: 120px; }
    #verdict { flex-basis: 100%; padding-top: 0; }
  }
</style>
</head>
<body>
<header>
  <h1>Fashion-MNIST classifier</h1>
  <p id="model">Upload a photo of a clothing item or shoe, drop one here, or draw one.</p>
</header>
<main>
  <section class="card">
    <h2>Your image</h2>
    <label id="drop" for="file">
      <span><strong>Choose an image</strong> or drop it here</span>
      <span class="hint">PNG, JPEG, WebP, GIF or BMP</span>
    </label>
    <input id="file" type="file" accept="image/png,image/jpeg,image/webp,image/gif,image/bmp">
    <div class="or">or draw a filled item, dark on white</div>
    <canvas id="canvas" width="280" height="280"></canvas>
    <div class="row">
      <button id="clear" type="button">Clear</button>
      <span class="hint">each stroke is classified when you lift the pen</span>
    </div>
  </section>
  <section class="card">
    <h2>What the model sees</h2>
    <div class="seen">
      <div class="frame"><img id="original" alt="" hidden><div class="empty" id="original-empty">
        </div>original</div>
      <div class="frame input"><img id="input-view" alt="28x28 model input" hidden>
        <img id="heat" alt="Grad-CAM heat map" hidden>
        <div class="empty" id="input-empty"></div>28 &times; 28 input</div>
      <div id="verdict">
        <div id="top-label">&ndash;</div>
        <div id="top-prob">no image yet</div>
        <div id="name"></div>
        <label class="toggle"><input id="explain-toggle" type="checkbox">
          show where the evidence is (Grad-CAM)</label>
      </div>
    </div>
    <h2>Probabilities</h2>
    <div class="bars" id="bars"></div>
    <div id="error" role="alert"></div>
  </section>
</main>
<footer>API: <code>POST /predict</code>, <code>POST /predict/batch</code>,
  <code>POST /explain</code>, <code>GET /health</code>; schema at <a href="docs">/docs</a>.</footer>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let rows = [];

function buildBars(names) {
  const bars = $("bars");
  bars.replaceChildren();
  rows = names.map((name) => {
    const label = document.createElement("div");
    label.className = "name";
    label.textContent = name;
    const track = document.createElement("div");
    track.className = "track";
    const fill = document.createElement("div");
    fill.className = "fill";
    track.append(fill);
    const pct = document.createElement("div");
    pct.className = "pct";
    bars.append(label, track, pct);
    return { label, track, fill, pct };
  });
}

function show(result, name) {
  $("error").textContent = "";
  $("original").hidden = false; $("original-empty").hidden = true;
  const best = result.predictions[0];
  $("top-label").textContent = best.label;
  $("top-prob").textContent = (100 * best.probability).toFixed(1) + "% probability";
  $("name").textContent = name || "";
  const probability = new Map(result.predictions.map((p) => [p.index, p.probability]));
  rows.forEach((row, i) => {
    const p = probability.get(i) || 0;
    row.fill.style.width = (100 * p).toFixed(1) + "%";
    row.pct.textContent = (100 * p).toFixed(1) + "%";
    for (const el of [row.label, row.track, row.pct]) el.classList.toggle("top", i === best.index);
  });
  if (result.input) {
    $("input-view").src = result.input;
    $("input-view").hidden = false; $("input-empty").hidden = true;
  }
}

function showError(message) {
  $("error").textContent = message;
  $("top-label").textContent = "\u2013";
  $("top-prob").textContent = "no prediction";
  $("name").textContent = "";
  $("input-view").hidden = true; $("input-empty").hidden = false; $("heat").hidden = true;
  $("original").hidden = true; $("original-empty").hidden = false;
  rows.forEach((row) => {
    row.fill.style.width = "0";
    row.pct.textContent = "";
    for (const el of [row.label, row.track, row.pct]) el.classList.remove("top");
  });
}

let onShow = null;  // the image on show, for the heat map

// POST one image to `path`; the JSON answer, or null after showing the error
async function postImage(path, blob, name) {
  const form = new FormData();
  form.append("file", blob, name || "image");
  let response, body;
  try {
    response = await fetch(path, { method: "POST", body: form });
    body = await response.json();
  } catch (err) {
    showError("The server did not answer: " + err);
    return null;
  }
  if (!response.ok) {
    showError(body.error || response.statusText);
    return null;
  }
  return body;
}

async function explainLast() {
  const heat = $("heat");
  if (!$("explain-toggle").checked || !onShow) { heat.hidden = true; return; }
  const body = await postImage("explain", onShow.blob, onShow.name);
  if (!body) return;
  heat.src = body.heatmap;
  heat.hidden = false;
}

$("explain-toggle").addEventListener("change", explainLast);

async function classify(blob, name) {
  onShow = { blob, name };
  $("heat").hidden = true;
  const body = await postImage("predict?include_input=true", blob, name);
  if (!body) return;
  show(body, name);
  explainLast();
}

function showOriginal(blob) {
  const img = $("original");
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(blob);
}

function useFile(file) {
  if (!file) return;
  showOriginal(file);
  classify(file, file.name);
}

$("file").addEventListener("change", (e) => useFile(e.target.files[0]));
const drop = $("drop");
["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => {
  e.preventDefault(); drop.classList.add("over");
}));
["dragleave", "drop"].forEach((t) => drop.addEventListener(t, () => drop.classList.remove("over")));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  useFile(e.dataTransfer.files[0]);
});

const canvas = $("canvas");
const ctx = canvas.getContext("2d");
function clearCanvas() {
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height);
}
clearCanvas();
let drawing = false, last = null;
function point(e) {
  const r = canvas.getBoundingClientRect();
  const x = (e.clientX - r.left) * canvas.width / r.width;
  return [x, (e.clientY - r.top) * canvas.height / r.height];
}
canvas.addEventListener("pointerdown", (e) => {
  drawing = true; last = point(e); canvas.setPointerCapture(e.pointerId);
  ctx.beginPath(); ctx.arc(last[0], last[1], 9, 0, 2 * Math.PI); ctx.fillStyle = "#222"; ctx.fill();
});
canvas.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  const p = point(e);
  ctx.strokeStyle = "#222"; ctx.lineWidth = 18; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath(); ctx.moveTo(last[0], last[1]); ctx.lineTo(p[0], p[1]); ctx.stroke();
  last = p;
});
function endStroke() {
  if (!drawing) return;
  drawing = false;
  canvas.toBlob((blob) => { showOriginal(blob); classify(blob, "drawing.png"); }, "image/png");
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);
$("clear").addEventListener("click", clearCanvas);

fetch("health").then((r) => r.json()).then((h) => {
  buildBars(h.classes);
  let text = "Model: " + h.model;
  if (h.test_accuracy != null) {
    text += ", " + (100 * h.test_accuracy).toFixed(1) + "% test accuracy";
  }
  $("model").textContent = text + ". Upload a photo of a clothing item or shoe, or draw one.";
}).catch(() => {});
</script>
</body>
</html>
"""
