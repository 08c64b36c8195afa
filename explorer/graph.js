// Runs a network exported by convviz_helpers.export (graph.json + weights.bin) with TensorFlow.js
// operations, and explains its predictions with Grad-CAM.
//
// Shared by the page (explorer.js, with the global `tf` of tf.min.js) and the Node test script
// (run_graph.mjs, with the npm package), so the numbers the tests check are the page's numbers.
// Every function takes `tf` as its first argument instead of importing it for that reason.

// The activations the exported graph may name. ReLU6 and friends are TF.js built-ins whose
// gradients every backend has.
function activate(tf, x, name) {
  switch (name) {
    case "linear": return x;
    case "relu": return tf.relu(x);
    case "relu6": return tf.relu6(x);
    case "sigmoid": return tf.sigmoid(x);
    case "tanh": return tf.tanh(x);
    case "softmax": return tf.softmax(x);
    case "swish":
    case "silu": return tf.mul(x, tf.sigmoid(x));
    default: throw new Error(`unknown activation ${name}`);
  }
}

// tf.fused.* runs convolution, bias and ReLU/ReLU6 in one kernel: the fast forward pass. Inside
// tf.grad the plain ops are used instead: a fused op's gradient also computes the gradient of its
// filter (measured: 90 % of a backward pass), which Grad-CAM never needs.
const FUSABLE = new Set(["linear", "relu", "relu6"]);

export class Graph {
  // spec: the parsed graph.json; buffer: the ArrayBuffer of weights.bin.
  constructor(tf, spec, buffer) {
    if (spec.format !== "convviz-graph") throw new Error("not a convviz graph");
    const floats = new Float32Array(buffer);
    if (floats.length !== spec.weights.count) {
      throw new Error(`weights.bin holds ${floats.length} numbers, graph.json expects ${spec.weights.count}`);
    }
    this.spec = spec;
    this.ops = spec.ops;
    this.index = new Map(spec.ops.map((op, i) => [op.name, i]));
    this.inputSize = spec.input.shape.slice(0, 2);
    this.classes = spec.classes;
    // Weights become tensors once; tf.keep makes them survive every tf.tidy below.
    this.params = new Map();
    for (const op of spec.ops) {
      const arrays = {};
      for (const [key, [offset, shape]] of Object.entries(op.weights || {})) {
        const size = shape.reduce((a, b) => a * b, 1);
        arrays[key] = tf.keep(tf.tensor(floats.subarray(offset, offset + size), shape, "float32"));
      }
      this.params.set(op.name, arrays);
    }
    // The last op's pre-softmax values are the class scores Grad-CAM explains (as cam.grad_cam
    // does with scores="logits").
    this.output = spec.output;
  }

  static async load(tf, url) {
    const base = url.endsWith("/") ? url : url + "/";
    const spec = await (await fetchOk(base + "graph.json")).json();
    const buffer = await (await fetchOk(base + spec.weights.file)).arrayBuffer();
    return new Graph(tf, spec, buffer);
  }

  // One operation on already computed inputs. `logits` asks the output op for its
  // pre-activation values; `differentiable` avoids fused kernels (see FUSABLE).
  apply(tf, op, inputs, logits = false, differentiable = false) {
    const p = this.params.get(op.name);
    const x = inputs[0];
    const activation = logits ? "linear" : op.activation;
    if (differentiable && ["conv2d", "depthwise_conv2d", "dense"].includes(op.op)) {
      let y = op.op === "conv2d" ? tf.conv2d(x, p.kernel, op.strides, op.padding)
        : op.op === "depthwise_conv2d" ? tf.depthwiseConv2d(x, p.kernel, op.strides, op.padding)
        : tf.matMul(x, p.kernel);
      if (p.bias) y = tf.add(y, p.bias);
      return activate(tf, y, activation);
    }
    switch (op.op) {
      case "rescale": return tf.add(tf.mul(x, tf.tensor(op.scale)), tf.tensor(op.offset));
      case "conv2d":
      case "depthwise_conv2d": {
        const conv = op.op === "conv2d" ? tf.fused.conv2d : tf.fused.depthwiseConv2d;
        const fused = FUSABLE.has(activation);
        const y = conv({x, filter: p.kernel, strides: op.strides, pad: op.padding, bias: p.bias,
                        activation: fused ? activation : "linear"});
        return fused ? y : activate(tf, y, activation);
      }
      case "dense": {
        const fused = FUSABLE.has(activation);
        const y = tf.fused.matMul({a: x, b: p.kernel, bias: p.bias, activation: fused ? activation : "linear"});
        return fused ? y : activate(tf, y, activation);
      }
      case "affine": return tf.add(tf.mul(x, p.scale), p.shift);
      case "activation": return activate(tf, x, activation);
      case "add": return tf.addN(inputs);
      case "max_pool": return tf.maxPool(x, op.pool, op.strides, op.padding);
      case "avg_pool": return tf.avgPool(x, op.pool, op.strides, op.padding);
      case "global_avg_pool": return tf.mean(x, [1, 2]);
      case "global_max_pool": return tf.max(x, [1, 2]);
      case "flatten": return tf.reshape(x, [x.shape[0], -1]);
      default: throw new Error(`operation ${op.op} (layer ${op.name}) is not supported`);
    }
  }

  // Runs ops[from..to] (inclusive) into `values` (a Map name -> tensor that already holds every
  // input they read). The output op gives its logits under its own name.
  run(tf, values, from, to, differentiable = false) {
    for (let i = from; i <= to; i++) {
      const op = this.ops[i];
      const inputs = op.inputs.map((name) => {
        const value = values.get(name);
        if (!value) throw new Error(`${op.name} reads ${name}, which is not computed`);
        return value;
      });
      values.set(op.name, this.apply(tf, op, inputs, op.name === this.output, differentiable));
    }
    return values;
  }

  // The forward pass of a batch (n, H, W, 3) in [0, 1]: a Map of every op's output (kept
  // tensors: call dispose(values) when done) with the logits under the output op's name, and
  // the probabilities under "probabilities".
  forward(tf, images) {
    const values = new Map();
    tf.tidy(() => {
      values.set(this.spec.input.name, images);
      this.run(tf, values, 0, this.ops.length - 1);
      const last = this.ops[this.ops.length - 1];
      const logits = values.get(this.output);
      values.set("probabilities", last.activation === "softmax" ? tf.softmax(logits) : activate(tf, logits, last.activation));
      for (const [name, value] of values) if (name !== this.spec.input.name) tf.keep(value);
    });
    return values;
  }

  // Class-score gradient with respect to `layer`'s output, for class `classIndex` of each image,
  // given the forward pass `values`. The ops after the layer are run again inside tf.grad, reading
  // every earlier output (skip connections) as a constant, as a gradient tape on that layer's
  // output does. Returns a kept tensor shaped like the layer's output.
  //
  // Where the network ends in global average pooling and a Dense layer right after `layer`
  // (Lite0's top_activation, ShapesNet's last block), the gradient is the Dense column divided
  // by h*w at every position: no backward pass needed.
  layerGradient(tf, values, layer, classIndex) {
    const at = this.index.get(layer);
    if (at === undefined) throw new Error(`no layer ${layer} in ${this.spec.name}`);
    const activation = values.get(layer);
    const tail = this.ops.slice(at + 1);
    const [n, h, w] = activation.shape;
    const units = this.classes.length;
    return tf.tidy(() => {
      const oneHot = tf.oneHot(tf.tensor1d(classIndex, "int32"), units).toFloat(); // (n, K)
      if (tail.length === 2 && tail[0].op === "global_avg_pool" && tail[0].inputs[0] === layer &&
          tail[1].op === "dense" && tail[1].inputs[0] === tail[0].name && tail[1].name === this.output) {
        const columns = tf.matMul(oneHot, this.params.get(tail[1].name).kernel, false, true); // (n, C)
        return tf.keep(tf.tile(tf.reshape(tf.div(columns, h * w), [n, 1, 1, -1]), [1, h, w, 1]));
      }
      const score = (a) => {
        const local = new Map(values);
        local.set(layer, a);
        this.run(tf, local, at + 1, this.ops.length - 1, true);
        return tf.sum(tf.mul(local.get(this.output), oneHot));
      };
      return tf.keep(tf.grad(score)(activation));
    });
  }
}

async function fetchOk(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not load ${url} (HTTP ${response.status})`);
  return response;
}

// Frees the tensors of a forward pass (the input image belongs to the caller).
export function dispose(values, keep) {
  for (const value of values.values()) if (value !== keep) value.dispose();
}

// Grad-CAM as convviz_helpers.cam.grad_cam computes it: channel weights = mean gradient over
// positions, map = ReLU(sum_k weight_k A_k), bilinear upsampling to (height, width) with half-pixel
// centres (keras.ops.image.resize, i.e. tf.image.resize, which cam.upsample uses), ReLU, then
// division by each map's maximum (cam.normalise: an all-zero map stays zero).
// activation, gradient: (n, h, w, c). Returns a kept (n, height, width) tensor in [0, 1].
export function gradCam(tf, activation, gradient, height, width) {
  return tf.tidy(() => {
    const weights = tf.mean(gradient, [1, 2], true); // (n, 1, 1, c)
    let maps = tf.relu(tf.sum(tf.mul(activation, weights), -1, true)); // (n, h, w, 1)
    if (maps.shape[1] !== height || maps.shape[2] !== width) {
      maps = tf.image.resizeBilinear(maps, [height, width], false, true);
    }
    maps = tf.relu(tf.squeeze(maps, [3]));
    const peak = tf.max(maps, [1, 2], true);
    const scale = tf.where(tf.greater(peak, 0), peak, tf.onesLike(peak));
    return tf.keep(tf.div(maps, scale));
  });
}

// The network's view of a photo of any size: the largest centred square (as data.sample_image
// crops), then, when that square is at least twice the input side, a box filter of the whole
// factor floor(side / size) (so a big photo is averaged, not sampled), then bilinear resizing
// with half-pixel centres to (size, size). pixels: (H, W, 3) in [0, 1]. Returns (1, size, size, 3).
// tests/test_explorer.py does the same in numpy + tf.image.resize to check the page.
export function toNetworkInput(tf, pixels, size) {
  return tf.tidy(() => {
    const [h, w] = pixels.shape;
    const side = Math.min(h, w);
    const top = Math.floor((h - side) / 2);
    const left = Math.floor((w - side) / 2);
    let x = tf.slice(pixels, [top, left, 0], [side, side, 3]).expandDims(0);
    const factor = Math.floor(side / size);
    if (factor >= 2) {
      const kept = factor * Math.floor(side / factor);
      x = tf.avgPool(tf.slice(x, [0, 0, 0, 0], [1, kept, kept, 3]), factor, factor, "valid");
    }
    if (x.shape[1] !== size) x = tf.image.resizeBilinear(x, [size, size], false, true);
    return x;
  });
}

// The k largest values of a probability vector as [{index, name, probability}], highest first
// (ties: lower index first, like numpy's stable argsort).
export function topK(probabilities, names, k) {
  const order = Array.from(probabilities.keys());
  order.sort((a, b) => probabilities[b] - probabilities[a] || a - b);
  return order.slice(0, k).map((index) => ({index, name: names[index], probability: probabilities[index]}));
}
