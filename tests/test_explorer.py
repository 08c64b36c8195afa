"""The explorer page (book/explorer.md) in headless Chromium, against the Python package.

Run after the build (`make site-test`, part of `make test`), with every host but 127.0.0.1
unreachable: TensorFlow.js and the networks come from the site itself. The page's test hook,
`window.convvizExplorer.explain({model, photo, layer, classIndex})`, gives its top-5 and
Grad-CAM map, which must agree with `models.pretrained("efficientnet_lite0")` /
`models.shapes_model()` and `cam.grad_cam` at the same layer (0.01 mean absolute difference).
Also: a photo of another size is cut and resized as the page says (the same steps in numpy and
tf.image.resize here), a damaged file gets a sentence on the page and no console error, and a
screenshot of the page explaining an uploaded photo goes to _build/screenshots/explorer-upload.png.
The page's timings on TF.js's CPU backend go to _build/explorer-timing.json (not asserted).
"""

import base64
import functools
import http.server
import json
import shutil
import tempfile
import threading

import numpy as np
import pytest
from test_book import CHROMIUM_FLAGS, SCREENSHOTS, SITE, _QuietHandler

from convviz_helpers import cam, data, export, models
from convviz_helpers._tf import keras

pytestmark = pytest.mark.browser

ASSETS = SITE / "explorer" / "models"
PAGE = "book/explorer.html?backend=cpu"  # the backend every reader has; WebGL varies by machine
LITE0_MIDDLE, SHAPES_MIDDLE = "block5c_add", "block2_relu"
TIMINGS = {}


@pytest.fixture(scope="module")
def page():
    """The explorer page, loaded and ready, in a fresh headless Chromium that records the console."""
    if not (SITE / "book" / "explorer.html").is_file() or not (ASSETS / "index.json").is_file():
        pytest.fail(f"No explorer in {SITE}: run `make book` first (it exports the networks).")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.fail("The explorer test needs Debian's chromium and chromium-driver (`make browser` as root).")
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="convviz-explorer-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromedriver))
    driver.set_script_timeout(600)  # Lite0's gradients on a busy 2-core CPU
    driver.get(f"http://127.0.0.1:{server.server_port}/{PAGE}")
    ready = driver.execute_async_script(
        "const done = arguments[0];"
        "(function wait() { if (window.convvizExplorer) window.convvizExplorer.ready.then(done);"
        " else setTimeout(wait, 100); })();")
    message = driver.find_element("id", "cvx-message").text
    assert ready, f"The explorer did not start: {message}"
    yield driver
    driver.quit()
    server.shutdown()
    server.server_close()
    shutil.rmtree(profile, ignore_errors=True)
    if TIMINGS:
        (SITE.parent / "explorer-timing.json").write_text(json.dumps(TIMINGS, indent=1))


def explain(driver, **request):
    """window.convvizExplorer.explain(request) in the page; an ImageData is passed as
    {"pixels": (H, W, 3) uint8} and built in the page."""
    pixels = request.pop("pixels", None)
    if pixels is not None:
        h, w = pixels.shape[:2]
        rgba = np.concatenate([pixels, np.full((h, w, 1), 255, np.uint8)], axis=-1)
        request["imageData"] = [base64.b64encode(rgba.tobytes()).decode(), w, h]
    result = driver.execute_async_script(
        """const [request, done] = arguments;
        if (request.imageData) {
          const [b64, w, h] = request.imageData;
          const bytes = Uint8ClampedArray.from(atob(b64), (c) => c.charCodeAt(0));
          request.photo = new ImageData(bytes, w, h);
          delete request.imageData;
        }
        window.convvizExplorer.explain(request).then(done, (e) => done({error: String(e)}));""",
        request,
    )
    assert "error" not in result, result["error"]
    cam_map = np.asarray(result["cam"]["values"], np.float32).reshape(result["cam"]["height"], result["cam"]["width"])
    return result, cam_map


def photo(model_key, name):
    """A bundled photo exactly as the page reads it (the exported 8-bit PNG), (H, W, 3) in [0, 1]."""
    return export.read_png(ASSETS / model_key / "photos" / f"{name}.png")


def assert_same_top5(result, probabilities):
    """The page's top-5 are Keras's, in order (a swap allowed only between near-equal classes)."""
    page = [entry["index"] for entry in result["top5"]]
    expected = np.argsort(-probabilities, kind="stable")[: len(page)]
    np.testing.assert_allclose([e["probability"] for e in result["top5"]], probabilities[page], atol=1e-4)
    np.testing.assert_allclose(probabilities[page], probabilities[expected], atol=1e-5,
                               err_msg=f"page top-5 {page}, Keras {expected.tolist()}")
    assert set(page) == set(expected.tolist()) or len(page) < 5


def network_view(pixels, size):
    """What the page feeds the network for a photo of any size (graph.js toNetworkInput): the
    centred square, an integer box filter when it is at least twice the input side, then
    bilinear resizing with half-pixel centres."""
    h, w = pixels.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = pixels[top:top + side, left:left + side].astype(np.float32)
    factor = side // size
    if factor >= 2:
        kept = factor * (side // factor)
        square = square[:kept, :kept].reshape(kept // factor, factor, kept // factor, factor, 3).mean(axis=(1, 3))
    if square.shape[0] != size:
        square = keras.ops.convert_to_numpy(keras.ops.image.resize(square[None], (size, size), interpolation="bilinear"))[0]
    return square


def check_model(driver, key, model, names, middle, middle_photos):
    """Top-5 and Grad-CAM at the default layer for every bundled photo, and at ``middle`` for a
    few; returns the page's results."""
    images = np.stack([photo(key, name) for name in names])
    probabilities = model.predict(images, verbose=0)
    top1 = probabilities.argmax(axis=1)
    default = models.last_conv_layer(model).name
    expected = cam.grad_cam(model, images, top1, layer=default)
    results = []
    for i, name in enumerate(names):
        result, cam_map = explain(driver, model=key, photo=name, layer=default)
        assert result["backend"] == "cpu"
        assert_same_top5(result, probabilities[i])
        assert result["classIndex"] == top1[i]
        assert cam_map.shape == images.shape[1:3] and 0 <= cam_map.min() and cam_map.max() <= 1
        assert np.abs(cam_map - expected[i]).mean() < 0.01, f"{key} {name} at {default}"
        results.append(result)
    picked = [names.index(name) for name in middle_photos]
    expected = cam.grad_cam(model, images[picked], top1[picked], layer=middle)
    for j, i in enumerate(picked):
        result, cam_map = explain(driver, model=key, photo=names[i], layer=middle)
        assert np.abs(cam_map - expected[j]).mean() < 0.01, f"{key} {names[i]} at {middle}"
        results.append(result)
    return results


def test_lite0_top5_and_grad_cam_match_python(page):
    index = json.loads((ASSETS / "index.json").read_text())
    names = index["efficientnet_lite0"]["photos"]
    results = check_model(page, "efficientnet_lite0", models.pretrained("efficientnet_lite0"), names,
                          LITE0_MIDDLE, names[:2])
    head = [r for r in results if r["layer"] == "top_activation"]
    middle = [r for r in results if r["layer"] == LITE0_MIDDLE]
    # Forward pass + top-5 + Grad-CAM at the head: the explain() total of a fresh photo. A middle
    # block on an already computed forward pass: its Grad-CAM step.
    TIMINGS["efficientnet_lite0"] = {
        "backend": "cpu (headless Chromium)",
        "top5_and_head_grad_cam_s": [round(r["ms"] / 1000, 2) for r in head],
        f"{LITE0_MIDDLE}_grad_cam_s": [round(r["steps"]["gradCam"] / 1000, 2) for r in middle],
    }


def test_shapesnet_top5_and_grad_cam_match_python(page):
    names = list(data.SHAPE_CLASSES)
    check_model(page, "shapesnet", models.shapes_model(), names, SHAPES_MIDDLE, names[:2])


def test_imagedata_of_another_size_is_cut_resized_and_explained(page):
    """A 480x640 photo (box filter of 2, then bilinear) through the ImageData path of the hook."""
    big = data.sample_image("astronaut", (480, 640))
    pixels = np.round(big * 255).astype(np.uint8)
    result, cam_map = explain(page, model="efficientnet_lite0", pixels=pixels, layer="top_activation")
    model = models.pretrained("efficientnet_lite0")
    view = network_view(pixels / 255.0, 224)[None]
    assert_same_top5(result, model.predict(view, verbose=0)[0])
    expected = cam.grad_cam(model, view, result["classIndex"], layer="top_activation")[0]
    assert np.abs(cam_map - expected).mean() < 0.01


def _logged_errors(driver):
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_uploaded_photo_is_explained_and_shown(page, tmp_path):
    """A photo chosen in the file input (chelsea at its own 300x451) is explained on the page as
    the numpy resize predicts; the screenshot shows it."""
    pixels = np.round(data.sample_image("chelsea") * 255).astype(np.uint8)
    upload = tmp_path / "my_cat.png"
    export.write_png(upload, pixels / 255.0)
    _logged_errors(page)  # clears the log
    page.find_element("id", "cvx-file").send_keys(str(upload))
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(page, 600).until(lambda d: "my_cat.png" in d.find_element("id", "cvx-message").text
                                   and "Grad-CAM" in d.find_element("id", "cvx-message").text)
    result, cam_map = explain(page, layer="top_activation")  # the image on the page, as it is
    model = models.pretrained("efficientnet_lite0")
    view = network_view(pixels / 255.0, 224)[None]
    assert_same_top5(result, model.predict(view, verbose=0)[0])
    expected = cam.grad_cam(model, view, result["classIndex"], layer="top_activation")[0]
    assert np.abs(cam_map - expected).mean() < 0.01
    assert not _logged_errors(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.execute_script("document.getElementById('convviz-explorer').scrollIntoView({block: 'start'});"
                        "window.scrollBy(0, -80);")
    page.save_screenshot(str(SCREENSHOTS / "explorer-upload.png"))
    page.execute_script("document.getElementById('cvx-timing').scrollIntoView({block: 'start'});")
    page.save_screenshot(str(SCREENSHOTS / "explorer-upload-maps.png"))


def test_damaged_file_gets_a_sentence_not_a_console_error(page, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    _logged_errors(page)
    page.find_element("id", "cvx-file").send_keys(str(broken))
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(page, 60).until(lambda d: "broken.jpg" in d.find_element("id", "cvx-message").text)
    message = page.find_element("id", "cvx-message")
    assert "Could not read" in message.text and "cvx-error" in message.get_attribute("class")
    assert not _logged_errors(page)


def test_atlas_panel_shows_a_channels_pattern_and_examples(page):
    """With the chapter-3 atlas in the build, clicking an outlined feature map of an atlas layer
    shows its pattern and examples; without it, the panel stays hidden."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    atlas = json.loads((SITE / "explorer" / "atlas" / "atlas.json").read_text())["layers"]
    graph = json.loads((ASSETS / "efficientnet_lite0" / "graph.json").read_text())
    covered = {op["name"]: atlas[name] for op in graph["ops"] for name in op["layers"] if name in atlas}
    first = json.loads((ASSETS / "index.json").read_text())["efficientnet_lite0"]["photos"][0]
    if not covered:
        explain(page, model="efficientnet_lite0", photo=first, layer="top_activation")
        assert not page.find_element("id", "cvx-atlas").is_displayed()
        return
    layer, entry = next(iter(covered.items()))
    explain(page, model="efficientnet_lite0", photo=first, layer=layer)
    tiles = page.find_elements(By.CSS_SELECTOR, "#cvx-maps .cvx-in-atlas")
    assert tiles and {int(t.text) for t in tiles} <= set(entry["channels"])
    tiles[0].click()
    WebDriverWait(page, 60).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#cvx-atlas-body canvas")) == 1 + entry["example_count"])
    assert f"channel {tiles[0].text}" in page.find_element("id", "cvx-atlas-body").text
    page.execute_script("document.getElementById('cvx-maps-title').scrollIntoView({block: 'start'});"
                        "window.scrollBy(0, -80);")
    page.save_screenshot(str(SCREENSHOTS / "explorer-atlas.png"))
