// The explorer page (book/explorer.md): a network running in the reader's browser on a bundled
// photo or the reader's own (which never leaves the page), its top-5 classes, Grad-CAM at any
// layer, the feature maps of that layer, and for channels in the chapter-3 atlas their pattern
// and dataset examples.
//
// Loaded as an ES module after tf.min.js (the global `tf`). Assets are under this script's
// folder: models/index.json, models/<key>/{graph.json, weights.bin, photos/<name>.png},
// atlas/atlas.json (+ sprites). Also exposes window.convvizExplorer.explain() for the tests.
import {Graph, dispose, gradCam, toNetworkInput, topK} from "./graph.js";

const tf = window.tf;
const BASE = new URL(".", import.meta.url).href;
const MAX_TILES = 48; // feature maps shown: the most active channels (plus atlas channels)

const $ = (id) => document.getElementById(id);
const ui = {
  model: $("cvx-model"), photo: $("cvx-photo"), file: $("cvx-file"), drop: $("cvx-drop"),
  layer: $("cvx-layer"), message: $("cvx-message"), input: $("cvx-input"), overlay: $("cvx-overlay"),
  heatmap: $("cvx-heatmap"), top5: $("cvx-top5"), timing: $("cvx-timing"), maps: $("cvx-maps"),
  mapsTitle: $("cvx-maps-title"), atlas: $("cvx-atlas"), atlasBody: $("cvx-atlas-body"),
};

const state = {
  index: null, atlas: {layers: {}}, graphs: new Map(), key: null, graph: null,
  image: null, imageLabel: "", values: null, classIndex: null, layer: null, backend: null,
  atlasByLayer: new Map(), // the graph's layer name -> its atlas entry (Lite0 only)
};

// One explanation at a time: the reader's clicks and the test hook queue up instead of
// disposing tensors another step still reads.
let queue = Promise.resolve();
function enqueue(task) {
  const result = queue.then(task);
  queue = result.catch(() => {});
  return result;
}

function say(text, isError = false) {
  ui.message.textContent = text;
  ui.message.classList.toggle("cvx-error", isError);
}

// ---------------------------------------------------------------------------------------------
// Start-up

async function chooseBackend() {
  // ?backend=cpu|webgl pins one (the tests use cpu); otherwise WebGL where the browser has it,
  // else TF.js's pure-JavaScript CPU backend.
  const wanted = new URLSearchParams(location.search).get("backend");
  for (const name of wanted ? [wanted] : ["webgl", "cpu"]) {
    try {
      if (await tf.setBackend(name)) return name;
    } catch (error) {
      // the next candidate is tried
    }
  }
  throw new Error(`no TensorFlow.js backend could start (tried ${wanted || "webgl, cpu"})`);
}

async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not load ${url} (HTTP ${response.status})`);
  return response.json();
}

async function start() {
  state.backend = await chooseBackend();
  state.index = await fetchJson(BASE + "models/index.json");
  try {
    state.atlas = await fetchJson(BASE + "atlas/atlas.json");
  } catch (error) {
    state.atlas = {layers: {}}; // an older build without the atlas: the panel stays hidden
  }
  ui.model.replaceChildren(...Object.entries(state.index).map(([key, entry]) => new Option(entry.title, key)));
  ui.model.addEventListener("change", () => enqueue(() => useModel(ui.model.value).then(() => showPhoto(ui.photo.value))).catch(report));
  ui.photo.addEventListener("change", () => enqueue(() => showPhoto(ui.photo.value)).catch(report));
  ui.layer.addEventListener("change", () => enqueue(() => explainCurrent({layer: ui.layer.value})).catch(report));
  ui.file.addEventListener("change", () => {
    if (ui.file.files.length) enqueue(() => showFile(ui.file.files[0])).catch(report);
  });
  ui.drop.addEventListener("dragover", (event) => { event.preventDefault(); ui.drop.classList.add("cvx-over"); });
  ui.drop.addEventListener("dragleave", () => ui.drop.classList.remove("cvx-over"));
  ui.drop.addEventListener("drop", (event) => {
    event.preventDefault();
    ui.drop.classList.remove("cvx-over");
    const file = event.dataTransfer.files[0];
    if (file) enqueue(() => showFile(file)).catch(report);
  });
  await enqueue(async () => {
    await useModel(ui.model.value);
    await showPhoto(ui.photo.value);
  });
}

// Errors reach the reader as a sentence on the page, never only as a console error.
function report(error) {
  say(`Something went wrong: ${error.message || error}`, true);
}

async function useModel(key) {
  if (!state.index[key]) throw new Error(`no model ${key}; the explorer has ${Object.keys(state.index).join(", ")}`);
  if (key === state.key) return;
  say(`Loading ${state.index[key].title}…`);
  const started = performance.now();
  if (!state.graphs.has(key)) state.graphs.set(key, await Graph.load(tf, BASE + `models/${key}/`));
  state.key = key;
  state.graph = state.graphs.get(key);
  ui.model.value = key;
  ui.photo.replaceChildren(...state.index[key].photos.map((name) => new Option(name, name)));
  ui.layer.replaceChildren(...state.graph.spec.layers.map((name) => new Option(
    name === state.graph.spec.default_layer ? `${name} (head input)` : name, name)));
  // The atlas names Keras layers; an exported op may stand for two (a convolution and the
  // BatchNorm folded into it: same channels, each scaled and shifted), so match on either.
  state.atlasByLayer = new Map();
  if (key === "efficientnet_lite0") {
    for (const op of state.graph.ops) {
      const named = op.layers.find((name) => state.atlas.layers[name]);
      if (named) state.atlasByLayer.set(op.name, state.atlas.layers[named]);
    }
  }
  state.layer = state.graph.spec.default_layer;
  ui.layer.value = state.layer;
  setImage(null, "");
  say(`Loaded ${state.index[key].title} in ${seconds(performance.now() - started)}.`);
}

// ---------------------------------------------------------------------------------------------
// Images

// pixels: a (H, W, 3) float tensor in [0, 1] (owned by this function from here on).
function setImage(pixels, label) {
  if (state.values) dispose(state.values, state.image);
  if (state.image) state.image.dispose();
  state.values = null;
  state.classIndex = null;
  state.image = pixels ? toNetworkInput(tf, pixels, state.graph.inputSize[0]) : null;
  if (pixels) pixels.dispose();
  state.imageLabel = label;
}

function pixelsOf(source) {
  // ImageData, an <img> or an ImageBitmap -> (H, W, 3) float32 in [0, 1]
  return tf.tidy(() => tf.div(tf.browser.fromPixels(source, 3).toFloat(), 255));
}

async function showPhoto(name) {
  if (!state.index[state.key].photos.includes(name)) {
    throw new Error(`no photo ${name} for ${state.key}; there are ${state.index[state.key].photos.join(", ")}`);
  }
  const response = await fetch(BASE + `models/${state.key}/photos/${name}.png`);
  if (!response.ok) throw new Error(`could not load the photo ${name} (HTTP ${response.status})`);
  const bitmap = await createImageBitmap(await response.blob());
  ui.photo.value = name;
  setImage(pixelsOf(bitmap), name);
  return explainCurrent({});
}

async function showFile(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (error) {
    say(`Could not read “${file.name}” as an image: the file is damaged or not a picture ` +
        "(JPEG, PNG, GIF or WebP work). Nothing was sent anywhere.", true);
    return null;
  }
  setImage(pixelsOf(bitmap), `your photo ${file.name} (${bitmap.width}×${bitmap.height})`);
  ui.photo.value = ""; // no bundled photo is shown now
  bitmap.close();
  return explainCurrent({});
}

// ---------------------------------------------------------------------------------------------
// Explaining

const seconds = (ms) => `${(ms / 1000).toFixed(2)} s`;

// Runs what is missing for the current image: the forward pass (kept for later layer and class
// changes), the gradient at the chosen layer, Grad-CAM; then draws everything.
async function explainCurrent({layer, classIndex}) {
  const graph = state.graph;
  if (!state.image) throw new Error("no image to explain");
  if (layer !== undefined) {
    if (!graph.spec.layers.includes(layer)) {
      throw new Error(`no layer ${layer} to explain at in ${graph.spec.name}; choose one of ${graph.spec.layers.join(", ")}`);
    }
    state.layer = layer;
    ui.layer.value = layer;
  }
  const steps = {};
  let started = performance.now();
  if (!state.values) {
    say(`Running ${graph.spec.name} on ${state.imageLabel}…`);
    await nextFrame(); // let the message paint before the CPU is busy
    state.values = graph.forward(tf, state.image);
    await state.values.get("probabilities").data();
    steps.forward = performance.now() - started;
  }
  const probabilities = await state.values.get("probabilities").data();
  const top5 = topK(probabilities, graph.classes, Math.min(5, graph.classes.length));
  // classIndex: a class, null for the top-1 class, undefined to keep the current one (a new
  // image has none, so it starts with its top-1 class).
  if (classIndex !== undefined && classIndex !== null) {
    if (!(Number.isInteger(classIndex) && classIndex >= 0 && classIndex < graph.classes.length)) {
      throw new Error(`classIndex must be an integer 0..${graph.classes.length - 1}, got ${classIndex}`);
    }
    state.classIndex = classIndex;
  } else if (classIndex === null || state.classIndex === null) {
    state.classIndex = top5[0].index;
  }
  started = performance.now();
  const [size] = graph.inputSize;
  const gradient = graph.layerGradient(tf, state.values, state.layer, [state.classIndex]);
  const maps = gradCam(tf, state.values.get(state.layer), gradient, size, size);
  const values = await maps.data();
  gradient.dispose();
  maps.dispose();
  steps.gradCam = performance.now() - started;
  started = performance.now();
  await draw(top5, values);
  steps.draw = performance.now() - started;
  const ms = Object.values(steps).reduce((a, b) => a + b, 0);
  ui.timing.textContent = `Backend: ${tf.getBackend()}. ` +
    (steps.forward !== undefined ? `Forward pass and top-5: ${seconds(steps.forward)}. ` : "Forward pass: reused. ") +
    `Grad-CAM at ${state.layer}: ${seconds(steps.gradCam)}. Drawing: ${seconds(steps.draw)}.`;
  say(`${graph.spec.name} on ${state.imageLabel}: Grad-CAM for “${graph.classes[state.classIndex]}” at ${state.layer}.`);
  return {top5, cam: {width: size, height: size, values: Array.from(values)}, backend: tf.getBackend(),
          ms, steps, classIndex: state.classIndex, layer: state.layer};
}

const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));

// ---------------------------------------------------------------------------------------------
// Drawing

// A perceptual dark-to-bright map (black, purple, orange, pale yellow, like matplotlib's
// inferno) so the heatmap's hues are not mistaken for the photo's.
const STOPS = [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21],
               [250, 193, 39], [252, 255, 164]];
function colour(v) {
  const x = Math.min(Math.max(v, 0), 1) * (STOPS.length - 1);
  const i = Math.min(Math.floor(x), STOPS.length - 2);
  const t = x - i;
  return STOPS[i].map((c, k) => c + t * (STOPS[i + 1][k] - c));
}

async function draw(top5, cam) {
  const [size] = state.graph.inputSize;
  const photo = await tf.browser.toPixels(tf.squeeze(state.image, [0])); // RGBA bytes
  const heat = new Uint8ClampedArray(size * size * 4);
  const blend = new Uint8ClampedArray(size * size * 4);
  for (let p = 0; p < size * size; p++) {
    const rgb = colour(cam[p]);
    for (let k = 0; k < 3; k++) {
      heat[4 * p + k] = rgb[k];
      blend[4 * p + k] = 0.5 * photo[4 * p + k] + 0.5 * rgb[k];
    }
    heat[4 * p + 3] = blend[4 * p + 3] = 255;
  }
  for (const [canvas, pixels] of [[ui.input, photo], [ui.heatmap, heat], [ui.overlay, blend]]) {
    canvas.width = canvas.height = size;
    canvas.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(pixels), size, size), 0, 0);
  }
  ui.top5.replaceChildren(...top5.map(({index, name, probability}) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = index === state.classIndex ? "cvx-chosen" : "";
    button.textContent = `${name} — ${(100 * probability).toFixed(1)} %`;
    button.title = `Grad-CAM for class ${index}`;
    button.addEventListener("click", () => enqueue(() => explainCurrent({classIndex: index})).catch(report));
    const bar = document.createElement("span");
    bar.className = "cvx-bar";
    bar.style.width = `${Math.max(1, 100 * probability)}%`;
    item.append(button, bar);
    return item;
  }));
  await drawFeatureMaps();
}

// The chosen layer's channels as small grey images, each scaled to its own maximum: the most
// active ones, plus the ones the atlas describes.
async function drawFeatureMaps() {
  const layer = state.layer;
  const activation = state.values.get(layer);
  const [, h, w, c] = activation.shape;
  const [data, means] = await Promise.all([activation.data(), tf.tidy(() => tf.mean(activation, [0, 1, 2])).data()]);
  const inAtlas = new Set((state.atlasByLayer.get(layer) || {}).channels || []);
  const order = Array.from(means.keys()).sort((a, b) => means[b] - means[a] || a - b);
  const shown = [...new Set([...order.slice(0, MAX_TILES), ...inAtlas])].slice(0, MAX_TILES + 16);
  ui.mapsTitle.textContent = `Feature maps of ${layer} (${h}×${w}, ${c} channels): the ${Math.min(MAX_TILES, c)} ` +
    `most active${inAtlas.size ? ", and the atlas channels (outlined: click one)" : ""}`;
  ui.maps.replaceChildren(...shown.map((channel) => {
    let peak = 0;
    for (let p = 0; p < h * w; p++) peak = Math.max(peak, data[p * c + channel]);
    const pixels = new Uint8ClampedArray(h * w * 4);
    for (let p = 0; p < h * w; p++) {
      const v = peak > 0 ? Math.max(data[p * c + channel], 0) / peak * 255 : 0;
      pixels[4 * p] = pixels[4 * p + 1] = pixels[4 * p + 2] = v;
      pixels[4 * p + 3] = 255;
    }
    const figure = document.createElement("figure");
    figure.className = inAtlas.has(channel) ? "cvx-tile cvx-in-atlas" : "cvx-tile";
    const canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    canvas.getContext("2d").putImageData(new ImageData(pixels, w, h), 0, 0);
    const caption = document.createElement("figcaption");
    caption.textContent = `${channel}`;
    figure.append(canvas, caption);
    figure.title = `channel ${channel}, mean activation ${means[channel].toFixed(3)}`;
    figure.addEventListener("click", () => showAtlas(layer, channel));
    return figure;
  }));
  ui.atlas.hidden = state.atlasByLayer.size === 0;
}

// Pattern and dataset examples of one channel, cut from the layer's two sprites.
async function showAtlas(layer, channel) {
  if (ui.atlas.hidden) return;
  const entry = state.atlasByLayer.get(layer);
  const row = entry ? entry.channels.indexOf(channel) : -1;
  if (row < 0) {
    const covered = Array.from(state.atlasByLayer, ([name, e]) => `${name} (${e.channels.length} channels)`);
    ui.atlasBody.textContent = `Channel ${channel} of ${layer} is not in the chapter-3 atlas, which covers ` +
      `${covered.join(", ")}: pick one of those layers and click an outlined map.`;
    return;
  }
  const [patterns, examples] = await Promise.all([entry.patterns, entry.examples].map(async (file) =>
    createImageBitmap(await (await fetch(BASE + "atlas/" + file)).blob())));
  const crop = (bitmap, size, x, y, shown) => {
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = size;
    canvas.style.width = canvas.style.height = `${shown}px`;
    canvas.getContext("2d").drawImage(bitmap, x, y, size, size, 0, 0, size, size);
    return canvas;
  };
  const s = entry.pattern_size, e = entry.example_size;
  const pattern = crop(patterns, s, row * s, 0, 160);
  const crops = Array.from({length: entry.example_count}, (_, j) => {
    const figure = document.createElement("figure");
    const caption = document.createElement("figcaption");
    caption.textContent = entry.example_activations[row][j].toFixed(2);
    figure.append(crop(examples, e, j * e, row * e, 96), caption);
    return figure;
  });
  const title = document.createElement("p");
  title.textContent = `${layer}, channel ${channel}: the pattern that excites it most (left) and the crops of ` +
    "the bundled photos that excite it most, with their activations.";
  const strip = document.createElement("div");
  strip.className = "cvx-strip";
  strip.append(pattern, ...crops);
  ui.atlasBody.replaceChildren(title, strip);
}

// ---------------------------------------------------------------------------------------------
// The test hook (tests/test_explorer.py) and start-up

async function explain({model, photo, layer, classIndex} = {}) {
  return enqueue(async () => {
    const started = performance.now();
    await useModel(model || state.key);
    if (typeof photo === "string") {
      if (!state.index[state.key].photos.includes(photo)) {
        throw new Error(`no photo ${photo} for ${state.key}; there are ${state.index[state.key].photos.join(", ")}`);
      }
      const response = await fetch(BASE + `models/${state.key}/photos/${photo}.png`);
      ui.photo.value = photo;
      setImage(pixelsOf(await createImageBitmap(await response.blob())), photo);
    } else if (photo instanceof ImageData) {
      setImage(pixelsOf(photo), `an image of ${photo.width}×${photo.height}`);
    } else if (photo !== undefined) {
      throw new Error("photo must be a bundled photo's name or an ImageData");
    }
    const result = await explainCurrent({layer: layer || state.graph.spec.default_layer, classIndex: classIndex ?? null});
    result.ms = performance.now() - started;
    return result;
  });
}

window.convvizExplorer = {explain, ready: null};
window.convvizExplorer.ready = start().then(() => true, (error) => {
  report(error);
  return false;
});
