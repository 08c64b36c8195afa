// Times the explorer's two steps in Node, on TF.js's pure-JavaScript CPU backend (the page's
// fallback backend, same code): a fresh photo's forward pass + top-5 + Grad-CAM at the default
// layer, and Grad-CAM at a middle layer on that forward pass. Prints wall-clock and CPU seconds
// (the process's own CPU time, which a busy shared machine does not inflate as much), the
// median of REPEATS runs each.
//
//   node explorer/time_graph.mjs MODEL_DIR MIDDLE_LAYER [REPEATS]
import * as tf from "@tensorflow/tfjs";
import {readFileSync} from "node:fs";
import {join} from "node:path";
import {Graph, dispose, gradCam, topK} from "./graph.js";

const [modelDir, middle, repeats = "3"] = process.argv.slice(2);
await tf.setBackend("cpu");
const spec = JSON.parse(readFileSync(join(modelDir, "graph.json"), "utf8"));
const weights = readFileSync(join(modelDir, spec.weights.file));
const graph = new Graph(tf, spec, weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength));
const [size] = graph.inputSize;

function camAt(values, layer, classIndex) {
  const gradient = graph.layerGradient(tf, values, layer, [classIndex]);
  const maps = gradCam(tf, values.get(layer), gradient, size, size);
  maps.dataSync();
  gradient.dispose();
  maps.dispose();
}

function measure(step) {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  step();
  const used = process.cpuUsage(cpu);
  return [(performance.now() - wall) / 1000, (used.user + used.system) / 1e6];
}

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = {head: [], middle: []};
for (let r = 0; r < Number(repeats); r++) {
  const image = tf.randomUniform([1, size, size, 3], 0, 1, "float32", r);
  let values, top;
  results.head.push(measure(() => {
    values = graph.forward(tf, image);
    top = topK(values.get("probabilities").dataSync(), graph.classes, 5);
    camAt(values, spec.default_layer, top[0].index);
  }));
  results.middle.push(measure(() => camAt(values, middle, top[0].index)));
  dispose(values, image);
  image.dispose();
}
const report = (runs) => ({wall_s: +median(runs.map((x) => x[0])).toFixed(2), cpu_s: +median(runs.map((x) => x[1])).toFixed(2)});
console.log(JSON.stringify({model: spec.name, backend: tf.getBackend(),
  [`forward_top5_${spec.default_layer}_grad_cam`]: report(results.head),
  [`${middle}_grad_cam`]: report(results.middle)}));
