"""What each setting of the atlas recipe buys, measured on a few EfficientNet-Lite0 channels.

For each variant (the shipped recipe, then one setting switched off at a time) it renders the
same channels and prints, per variant, the median over channels of the pattern's contrast (the
standard deviation of its pixels), of the channel's spatial mean pre-activation on the pattern,
and of the slope of its radially averaged power spectrum (photos here about -3, white noise 0),
each also as a ratio to the shipped recipe; it saves the patterns side by side as a PNG to look at.

    .venv/bin/python tools/atlas_ablation.py [layer] [steps] > ablation.log
"""

import dataclasses
import sys
import time

import numpy as np

from convviz_helpers import config, filters, models

CHANNELS = [0, 1, 2, 3, 4, 5]


def spectrum_slope(images):
    """(n,) slope of log power against log frequency (radially averaged, grey images)."""
    grey = images.mean(axis=-1)
    size = grey.shape[1]
    power = np.abs(np.fft.fftshift(np.fft.fft2(grey - grey.mean(axis=(1, 2), keepdims=True)), axes=(1, 2))) ** 2
    yy, xx = np.indices((size, size)) - size // 2
    radius = np.hypot(yy, xx).astype(int)
    keep = np.arange(2, size // 2)
    radial = np.stack([np.bincount(radius.ravel(), p.ravel())[keep] / np.bincount(radius.ravel())[keep] for p in power])
    return np.polyfit(np.log(keep), np.log(radial.T + 1e-20), 1)[0]


def main():
    layer = sys.argv[1] if len(sys.argv) > 1 else "block4c_expand_activation"
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 128
    model = models.pretrained("efficientnet_lite0")
    base = dataclasses.replace(filters.AtlasRecipe(), steps=steps)
    variants = {
        "shipped recipe": base,
        "no ReLU redirect": dataclasses.replace(base, redirect_steps=0),
        "no transforms": dataclasses.replace(base, pad=0, jitter=0, jitter_after=0, scale=(1.0, 1.0), rotate=0.0),
        "no colour decorrelation": dataclasses.replace(base, decorrelate=False),
        "pixels, not Fourier": dataclasses.replace(base, fourier=False),
    }
    rows, shown = {}, []
    for name, recipe in variants.items():
        start = time.perf_counter()
        patterns = filters.render(model, layer, CHANNELS, recipe=recipe, progress=False)
        seconds = time.perf_counter() - start
        activation = np.diagonal(filters.channel_means(model, [layer], patterns)[0][:, CHANNELS])
        rows[name] = (np.median(patterns.std(axis=(1, 2, 3))), np.median(activation), np.median(spectrum_slope(patterns)))
        shown.append(patterns)
        print(f"{name:26s} contrast {rows[name][0]:.3f}  activation {rows[name][1]:7.2f}  slope {rows[name][2]:5.2f}"
              f"  ({seconds:.0f} s)", flush=True)
    ref = rows["shipped recipe"]
    print(f"\n{layer}, channels {CHANNELS}, {steps} steps; ratios to the shipped recipe (contrast, activation):")
    for name, (contrast, activation, slope) in rows.items():
        print(f"{name:26s} {contrast / ref[0]:5.2f}  {activation / ref[1]:5.2f}")
    import matplotlib

    matplotlib.use("Agg")
    figure = filters.pattern_grid(np.concatenate(shown), labels=[f"{n[:18]}: {c}" for n in variants for c in CHANNELS],
                                  columns=len(CHANNELS), size=1.4, title=f"{layer}: recipe variants, {steps} steps")
    path = config.cache_dir() / f"ablation-{layer}.png"
    figure.savefig(path, dpi=80)
    print(f"figure: {path}")


if __name__ == "__main__":
    main()
