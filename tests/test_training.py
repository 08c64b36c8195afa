"""training: argument checks that must fail before any training, and the small array helpers."""

import numpy as np
import pytest

from convviz_helpers import shapesnet, training


@pytest.fixture(scope="module")
def tiny_model():
    return shapesnet.shapes_convnet(32, num_classes=3, widths=(4, 8))


def images(n, size=32):
    return np.random.default_rng(0).random((n, size, size, 3), dtype=np.float32)


def test_fit_trains_and_returns_per_epoch_history(tiny_model):
    history = training.fit(tiny_model, images(16), np.arange(16) % 3, validation=(images(8), np.arange(8) % 3),
                           epochs=2, batch_size=8, verbose=0)
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 2 for v in history.values())


@pytest.mark.parametrize("epochs", [0, -1, 1.5])
def test_fit_rejects_non_positive_epochs(tiny_model, epochs):
    with pytest.raises(ValueError, match="epochs"):
        training.fit(tiny_model, images(4), np.zeros(4, int), epochs=epochs, verbose=0)


def test_fit_rejects_unknown_optimizer_listing_valid_ones(tiny_model):
    with pytest.raises(ValueError, match="adam.*sgd.*rmsprop"):
        training.fit(tiny_model, images(4), np.zeros(4, int), epochs=1, optimizer="adagradd", verbose=0)


@pytest.mark.parametrize("name", sorted(training.OPTIMIZERS))
def test_every_named_optimizer_builds(name):
    assert training.make_optimizer(name.upper(), 1e-3) is not None


def test_fit_rejects_images_of_the_wrong_size(tiny_model):
    with pytest.raises(ValueError, match="expects 32x32"):
        training.fit(tiny_model, images(4, size=48), np.zeros(4, int), epochs=1, verbose=0)


def test_fit_rejects_labels_out_of_range(tiny_model):
    with pytest.raises(ValueError, match="0..2"):
        training.fit(tiny_model, images(4), np.array([0, 1, 2, 3]), epochs=1, verbose=0)


def test_fit_rejects_0_255_images(tiny_model):
    with pytest.raises(ValueError, match="divide by 255"):
        training.fit(tiny_model, images(4) * 255, np.zeros(4, int), epochs=1, verbose=0)


def test_confusion_matrix_rows_are_true_classes():
    matrix = training.confusion_matrix([0, 0, 1, 2], [0, 1, 1, 0], 3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 1, 0], [1, 0, 0]])


def test_misclassified_puts_the_most_confident_mistake_first():
    probabilities = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.7, 0.3]])
    wrong = training.misclassified([0, 0, 0, 1], probabilities.argmax(1), probabilities)
    np.testing.assert_array_equal(wrong, [2, 3, 1])


def test_warmup_cosine_rises_to_the_peak_then_falls_to_zero():
    schedule = training.warmup_cosine(1.0, total_steps=100, warmup_fraction=0.1)
    rates = [float(schedule(step)) for step in (0, 10, 55, 100)]
    assert rates[0] == pytest.approx(0.1)
    assert rates[1] == pytest.approx(1.0)
    assert rates[1] > rates[2] > rates[3]
    assert rates[3] == pytest.approx(0.0, abs=1e-6)


def test_format_table_aligns_columns():
    table = training.format_table([["plain", 0.5], ["augmented", 0.75]], ["run", "accuracy"])
    lines = table.splitlines()
    assert lines[2] == "plain         0.500"
    assert len({len(line) for line in lines}) == 1


def test_misclassified_titles_show_the_wrong_confidence():
    images = np.zeros((3, 8, 8, 3), np.float32)
    probabilities = np.array([[0.1, 0.9], [0.8, 0.2], [0.35, 0.65]])
    y_true, y_pred = np.array([0, 0, 0]), probabilities.argmax(axis=1)
    order = training.misclassified(y_true, y_pred, probabilities)
    assert list(order) == [0, 2]  # most confident mistake first; image 1 is right
    figure = training.plot_misclassified(images, y_true, y_pred, ["a", "b"], order, probabilities=probabilities)
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titles == ["a\n→ b (0.90)", "a\n→ b (0.65)"]


def test_a_single_sigmoid_unit_predicts_class_one_above_one_half():
    from convviz_helpers._tf import keras

    # The mean of the image's first channel, shifted: p = sigmoid(10 * (mean - 0.5)).
    inputs = keras.Input((4, 4, 3))
    mean = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(1, 1, use_bias=False, name="red")(inputs))
    outputs = keras.layers.Dense(1, activation="sigmoid", name="p")(mean)
    model = keras.Model(inputs, outputs)
    model.get_layer("red").set_weights([np.array([1.0, 0.0, 0.0], np.float32).reshape(1, 1, 3, 1)])
    model.get_layer("p").set_weights([np.array([[10.0]], np.float32), np.array([-5.0], np.float32)])
    images = np.zeros((3, 4, 4, 3), np.float32)
    images[:, :, :, 0] = np.array([0.2, 0.6, 0.9])[:, None, None]
    assert training.predict_classes(model, images).tolist() == [0, 1, 1]
    assert training.evaluate(model, images, [0, 1, 0]) == 2 / 3
