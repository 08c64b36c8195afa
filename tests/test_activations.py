"""feature_maps, the activation grid and the sparsity / selectivity measures.

Numbers are checked against independent computations: direct Keras sub-models for the maps,
hand-worked arithmetic for the display and the measures.
"""

import numpy as np
import pytest

from convviz_helpers import activations, models
from convviz_helpers._tf import keras


def images(n=5, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, size, size, 3)).astype(np.float32)


def branchy_base(name="base", size=32):
    """A small functional base with a residual Add and an Inception-style Concatenate."""
    x_in = keras.Input((size, size, 3), name=f"{name}_input")
    stem = keras.layers.Conv2D(8, 3, padding="same", name="stem_conv")(x_in)
    stem = keras.layers.Activation("relu", name="stem_relu")(stem)
    left = keras.layers.Conv2D(8, 1, name="left_conv")(stem)
    right = keras.layers.Conv2D(8, 3, padding="same", name="right_conv")(stem)
    added = keras.layers.Add(name="res_add")([stem, left])
    mixed = keras.layers.Concatenate(name="mixed0")([added, right])
    mixed = keras.layers.ReLU(name="mixed0_relu")(mixed)
    pooled = keras.layers.MaxPooling2D(2, name="pool")(mixed)
    return keras.Model(x_in, pooled, name=name)


def wrapped(base, size=32):
    """A student's model: preprocessing and dropout around a nested base, a dense head."""
    x_in = keras.Input((size, size, 3), name="images")
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_signed")(x_in)
    x = base(x)
    x = keras.layers.SpatialDropout2D(0.1, name="drop")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(x_in, keras.layers.Dense(3, activation="softmax", name="head")(x), name="student")


@pytest.fixture(scope="module")
def student():
    keras.utils.set_random_seed(0)
    return wrapped(branchy_base())


def test_nested_maps_equal_a_direct_submodel_of_the_inner_base(student):
    batch = images()
    names = ["stem_conv", "res_add", "mixed0", "mixed0_relu", "pool"]
    maps = activations.feature_maps(student, batch, names)
    base = student.get_layer("base")
    signed = batch * 2.0 - 1.0  # what the student's Rescaling layer feeds the base
    for name in names:
        direct = keras.Model(base.input, base.get_layer(name).output)(signed, training=False)
        np.testing.assert_allclose(maps[name], keras.ops.convert_to_numpy(direct), rtol=1e-5, atol=1e-5, err_msg=name)
    assert list(maps) == names


def test_default_layers_of_a_nested_branchy_model(student):
    maps = activations.feature_maps(student, images(2))
    # Not the input, preprocessing, the nested model itself, dropout or the rank-2 head; in the
    # base's own (topological) layer order.
    shown = {"stem_conv", "stem_relu", "left_conv", "right_conv", "res_add", "mixed0", "mixed0_relu", "pool"}
    assert list(maps) == [layer.name for layer in student.get_layer("base").layers if layer.name in shown]
    assert maps["mixed0"].shape == (2, 32, 32, 16)


def test_chunks_and_layer_objects_give_the_same_maps(student):
    batch = images(5)
    layer = models.find_layer(student, "mixed0")
    whole = activations.feature_maps(student, batch, [layer], batch_size=32)
    chunked = activations.feature_maps(student, batch, "mixed0", batch_size=2)
    np.testing.assert_allclose(whole["mixed0"], chunked["mixed0"], rtol=1e-6, atol=1e-6)


def test_repeated_names_in_nested_models_are_keyed_by_path():
    size = 16
    x_in = keras.Input((size, size, 3))
    first, second = branchy_base("first", size), branchy_base("second", size)
    model = keras.Model(x_in, keras.layers.Concatenate()([first(x_in), second(x_in)]))
    maps = activations.feature_maps(model, images(1, size), ["first/stem_conv", "second/stem_conv"])
    assert list(maps) == ["first/stem_conv", "second/stem_conv"]
    with pytest.raises(ValueError, match="ambiguous.*first/stem_conv.*second/stem_conv"):
        activations.feature_maps(model, images(1, size), ["stem_conv"])


def test_default_layers_of_shapesnet():
    model = models.shapes_convnet(input_size=32, widths=(8, 16, 32))
    expected = [f"block{i}_{kind}" for i in (1, 2, 3) for kind in ("conv", "bn", "relu", "pool")][:-1]
    assert [layer.name for layer in activations.shown_layers(model)] == expected


def test_default_layers_of_vgg16():
    model = models.pretrained("vgg16", weights=None)
    expected = []
    for block, convs in enumerate((2, 2, 3, 3, 3), start=1):
        expected += [f"block{block}_conv{i}" for i in range(1, convs + 1)] + [f"block{block}_pool"]
    assert [layer.name for layer in activations.shown_layers(model)] == expected


def test_default_layers_of_resnet50_keep_the_additions_and_drop_the_padding():
    names = [layer.name for layer in activations.shown_layers(models.pretrained("resnet50", weights=None))]
    assert names[:4] == ["conv1_conv", "conv1_bn", "conv1_relu", "pool1_pool"]
    assert {"conv2_block1_add", "conv2_block1_out", "conv5_block3_out"} <= set(names)
    assert not [name for name in names if name.endswith("_pad")]


def test_standardised_numbers_on_a_hand_made_map():
    # One channel 0, 1, 2, 3: mean 1.5, population std sqrt(1.25) = 1.1180.
    # (x - 1.5) / 1.1180 * 64 + 128 = 42.13, 99.38, 156.62, 213.87 -> rounded.
    tiles = np.array([[[0.0, 1.0], [2.0, 3.0]]])
    np.testing.assert_array_equal(activations.standardise(tiles), [[[42, 99], [157, 214]]])
    # A single spike is clipped: 15 zeros and one 1 -> the spike sits 3.87 std above the mean.
    spike = np.zeros((1, 4, 4))
    spike[0, 1, 2] = 1.0
    shown = activations.standardise(spike)
    assert shown[0, 1, 2] == 255 and shown[0, 0, 0] == round(128 - 0.0625 / np.sqrt(0.0625 * 0.9375) * 64)


def test_constant_channels_are_blank_never_noise_or_nan():
    rng = np.random.default_rng(1)
    maps = np.stack([
        np.zeros((6, 6)),                                # a silent ReLU channel
        np.full((6, 6), 5.0),                            # constant, non-zero
        3.0 + 1e-7 * rng.standard_normal((6, 6)),        # constant up to float round-off
        rng.uniform(0, 1, (6, 6)),                       # a real pattern
    ], axis=-1)[None].astype(np.float32)
    with np.errstate(all="raise"):  # no division by zero on the way
        grid = activations.activation_grid(maps, images_per_row=4, gap=1, fill=255)
    assert grid.shape == (6, 4 * 7 - 1)
    tiles = [grid[:, i * 7:i * 7 + 6] for i in range(4)]
    for tile in tiles[:3]:
        assert (tile == 0).all()
    assert tiles[3].std() > 20
    assert (grid[:, 6::7] == 255).all()  # the gaps


def test_grid_layout_rows_and_channel_choice():
    maps = np.arange(2 * 2 * 2 * 5, dtype=np.float32).reshape(2, 2, 2, 5)
    grid = activations.activation_grid(maps, images_per_row=2, image=1, channels=[4, 0, 2], gap=1, fill=7)
    assert grid.shape == (2 * 3 - 1, 2 * 3 - 1)
    expected = activations.standardise(np.moveaxis(maps[1], -1, 0)[[4, 0, 2]])
    np.testing.assert_array_equal(grid[0:2, 0:2], expected[0])
    np.testing.assert_array_equal(grid[0:2, 3:5], expected[1])
    np.testing.assert_array_equal(grid[3:5, 0:2], expected[2])
    assert (grid[3:5, 3:5] == 7).all()  # no fourth tile


def test_plots_have_the_layer_names_as_titles(student):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    maps = activations.feature_maps(student, images(1))
    fig = activations.plot_activation_grids(maps, ["stem_conv", "mixed0"], images_per_row=8, max_channels=8)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles[0].startswith("stem_conv") and "first 8 of 16 channels" in titles[1]
    fig = activations.plot_activation_grid(maps["pool"], "pool")
    assert fig.axes[0].get_title(loc="left").startswith("pool")
    plt.close("all")


def test_measures_match_numpy_on_the_maps(student):
    batch, labels = images(6), np.array([0, 1, 2, 0, 1, 2])
    names = ["stem_conv", "mixed0_relu"]
    summary = activations.summarise(student, batch, names, batch_size=4)
    base = student.get_layer("base")
    relu = keras.ops.convert_to_numpy(keras.Model(base.input, base.get_layer("mixed0_relu").output)(batch * 2 - 1))
    silent = (relu.reshape(6, -1, 16) == 0).all(axis=1)  # (images, channels)
    assert activations.silent_fraction(summary)["mixed0_relu"] == pytest.approx(silent.mean())
    assert activations.zero_fraction(summary)["mixed0_relu"] == pytest.approx((relu == 0).mean())
    assert 0 < (relu == 0).mean() < 1
    assert activations.silent_fraction(summary)["stem_conv"] == 0.0
    assert activations.mean_activation(summary)["mixed0_relu"] == pytest.approx(relu.mean(), rel=1e-5)
    per_class = activations.class_means(summary, labels)["mixed0_relu"]
    expected = np.stack([relu[labels == k].mean(axis=(0, 1, 2)) for k in range(3)])
    np.testing.assert_allclose(per_class, expected, rtol=1e-5, atol=1e-7)


def test_silent_channels_are_counted_per_image():
    # Two images, three channels: image 0 has channels 0 and 1 silent, image 1 only channel 1;
    # image 1's channel 0 is zero at half its positions.
    means = np.array([[0.0, 0.0, 2.0], [1.0, 0.0, 2.0]])
    zeros = np.array([[1.0, 1.0, 0.0], [0.5, 1.0, 0.0]])
    summary = {"relu": activations.LayerSummary(means, zeros)}
    assert activations.silent_fraction(summary)["relu"] == pytest.approx(3 / 6)
    assert activations.zero_fraction(summary)["relu"] == pytest.approx(3.5 / 6)


def test_selectivity_on_hand_made_class_means():
    means = np.array([
        # channel: only class 0, every class alike, never fires, mostly class 2
        [4.0, 1.0, 0.0, 1.0],
        [0.0, 1.0, 0.0, 1.0],
        [0.0, 1.0, 0.0, 3.0],
    ])
    scores, preferred = activations.selectivity(means)
    # Last channel: top 3, rest (1 + 1) / 2 = 1 -> (3 - 1) / (3 + 1) = 0.5.
    np.testing.assert_allclose(scores, [1.0, 0.0, 0.0, 0.5])
    assert preferred[0] == 0 and preferred[3] == 2
    with pytest.raises(ValueError, match="non-negative"):
        activations.selectivity(means - 1)


def test_clear_errors(student):
    with pytest.raises(ValueError, match=r"No layer 'mixed9'.*Layers: .*base/mixed0"):
        activations.feature_maps(student, images(1), ["mixed9"])
    with pytest.raises(ValueError, match="32x32"):
        activations.feature_maps(student, images(1, size=40))
    with pytest.raises(ValueError, match=r"rank 4.*images\[None\]"):
        activations.feature_maps(student, images(1)[0])
    with pytest.raises(ValueError, match="1 channels but model 'student' expects 3"):
        activations.feature_maps(student, images(1)[..., :1])
    with pytest.raises(ValueError, match="'gap' does not output feature maps"):
        activations.feature_maps(student, images(1), ["gap"])
    with pytest.raises(ValueError, match="labels must be"):
        activations.class_means(activations.summarise(student, images(2), ["pool"]), [0, 1, 2])
