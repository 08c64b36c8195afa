// Runs an exported graph in Node with the npm-installed TensorFlow.js (its pure-JavaScript CPU
// backend, the one the page falls back to), for tests/test_export.py:
//
//   node explorer/run_graph.mjs MODEL_DIR IMAGES.f32 N OUT_DIR [LAYER ...] [--cam LAYER CLASS ...]
//
// IMAGES.f32: N images (H, W, 3) as little-endian float32 in [0, 1], H and W the graph's input.
// Writes OUT_DIR/logits.f32, OUT_DIR/probabilities.f32, OUT_DIR/<LAYER>.f32 for each LAYER, and
// for each --cam pair OUT_DIR/cam-<LAYER>.f32 (N maps at the input size, classes one per image
// or one for all as a comma list), then prints a JSON object {name: shape} on stdout.
import * as tf from "@tensorflow/tfjs";
import {readFileSync, writeFileSync} from "node:fs";
import {join} from "node:path";
import {Graph, dispose, gradCam} from "./graph.js";

const [modelDir, imagesPath, count, outDir, ...rest] = process.argv.slice(2);
await tf.setBackend("cpu");
const spec = JSON.parse(readFileSync(join(modelDir, "graph.json"), "utf8"));
const weights = readFileSync(join(modelDir, spec.weights.file));
const graph = new Graph(tf, spec, weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength));
const n = Number(count);
const [height, width] = graph.inputSize;
const raw = readFileSync(imagesPath);
const images = tf.tensor(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4), [n, height, width, 3]);

const shapes = {};
const save = (name, tensor) => {
  writeFileSync(join(outDir, `${name}.f32`), Buffer.from(tensor.dataSync().buffer));
  shapes[name] = tensor.shape;
};
const values = graph.forward(tf, images);
save("logits", values.get(graph.output));
save("probabilities", values.get("probabilities"));
for (let i = 0; i < rest.length; i++) {
  if (rest[i] === "--cam") {
    const layer = rest[i + 1];
    const classes = rest[i + 2].split(",").map(Number);
    const perImage = classes.length === 1 ? Array(n).fill(classes[0]) : classes;
    const gradient = graph.layerGradient(tf, values, layer, perImage);
    const maps = gradCam(tf, values.get(layer), gradient, height, width);
    save(`cam-${layer}`, maps);
    gradient.dispose();
    maps.dispose();
    i += 2;
  } else {
    save(rest[i], values.get(rest[i]));
  }
}
dispose(values, images);
console.log(JSON.stringify(shapes));
