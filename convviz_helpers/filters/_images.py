"""Image parameterisations and transforms: pixels or a colour-decorrelated Fourier spectrum,
the per-target start values and random jitter, and the display step of the plain recipe."""

import numpy as np

from .._tf import keras

ops = keras.ops

# The square root of the RGB covariance of natural photos (scikit-image's astronaut, coffee,
# chelsea, rocket and immunohistochemistry samples: U sqrt(S) from the SVD of the 3x3
# covariance), divided by its largest column norm. Mixing independent per-channel noise with it
# gives colours with the correlations of real photos; see ``_fourier_image``.
_COLOUR_ROOT = np.array(
    [[0.252, 0.127, 0.012],
     [0.250, -0.023, -0.030],
     [0.224, -0.117, 0.019]], dtype=np.float32) / 0.4197

# Default step sizes: the root-mean-square change of a pixel (plain, regularised) or of a


def _spectrum_scale(size):
    """(size, size//2+1) weights 1/frequency: a Fourier coefficient of unit size then gives
    about the same pixel energy at every frequency, as in natural images."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    frequency = np.maximum(np.hypot(fx, fy), 1.0 / size)
    return (1.0 / frequency / size).astype(np.float32)


def _inverse_dft(size):
    """Real matrices for the 2-D inverse real FFT (numpy's ``irfft2`` at ``s=(size, size)``) as
    two matrix products, so it runs the same on every Keras backend: ``rows`` (2, S, S) are
    cos and sin of the inverse transform along the first axis, ``cols`` (2, S//2+1, S) those
    along the second, with the 1/S^2 scale and the Hermitian weights (1 for the zero and Nyquist
    frequency, 2 for the others); an imaginary part at those two frequencies is ignored, as
    ``irfft`` does."""
    k = np.arange(size)
    rows = 2 * np.pi * np.outer(k, k) / size  # (h, ky)
    kx = np.arange(size // 2 + 1)
    weights = np.where((kx == 0) | ((size % 2 == 0) & (kx == size // 2)), 1.0, 2.0)[:, None]
    cols = 2 * np.pi * np.outer(kx, k) / size  # (kx, w)
    return (np.stack([np.cos(rows), np.sin(rows)]).astype(np.float32),
            (np.stack([np.cos(cols), np.sin(cols)]) * weights / size**2).astype(np.float32))


def _inverse_real_dft(real, imag, size):
    """(b, size, size, c) from the real and imaginary parts (b, c, size, size//2+1) of a
    spectrum: numpy's ``irfft2`` over the two spatial axes, written as matrix products."""
    rows, cols = _inverse_dft(size)
    # Along the first axis: a complex inverse DFT, (b, c, h, kx) real and imaginary parts.
    z_real = ops.einsum("hy,bcyk->bchk", rows[0], real) - ops.einsum("hy,bcyk->bchk", rows[1], imag)
    z_imag = ops.einsum("hy,bcyk->bchk", rows[1], real) + ops.einsum("hy,bcyk->bchk", rows[0], imag)
    # Along the second: the real inverse DFT, straight into (b, h, w, c).
    return ops.einsum("bchk,kw->bhwc", z_real, cols[0]) - ops.einsum("bchk,kw->bhwc", z_imag, cols[1])


def _fourier_image(spectrum, size):
    """Images (b, size, size, 3) in (0, 1) from spectra (b, 2, 3, size, size//2+1) (real and
    imaginary parts per colour channel): inverse FFT, colour mixing, sigmoid."""
    scale = _spectrum_scale(size)
    # ops.multiply, not `*`: a numpy array on either side of `*` would pull a PyTorch tensor
    # that requires grad into numpy.
    real, imag = ops.multiply(spectrum[:, 0], scale), ops.multiply(spectrum[:, 1], scale)  # (b, 3, ky, kx)
    channels = _inverse_real_dft(real, imag, size)
    mixed = ops.einsum("bhwc,dc->bhwd", channels * float(size), _COLOUR_ROOT)
    return ops.sigmoid(mixed)


# --- Lucid's image parameterisation (the atlas recipe) -------------------------------------------


def lucid_scale(size, decay_power=1.0):
    """(size, size//2+1) float32 weights of Lucid's ``fft_image``: ``size / max(f, 1/size) **
    decay_power`` for frequency f in cycles per pixel, so a spectrum of independent coefficients
    of one size gives an image whose power falls as 1/f^(2 * decay_power), like a photo's."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    frequency = np.maximum(np.hypot(fx, fy), 1.0 / size)
    return (size / frequency**decay_power).astype(np.float32)


def decorrelated_to_rgb(values):
    """Colours from decorrelated colour coordinates: ``(..., 3) -> (..., 3)``, each pixel
    multiplied by ``_COLOUR_ROOT`` (the square root of photos' RGB covariance), so independent
    coordinates become colours with the correlations of real photos. ``keras.ops`` or numpy in."""
    return ops.einsum("...c,dc->...d", values, _COLOUR_ROOT)


def rgb_to_decorrelated(colours):
    """The inverse of ``decorrelated_to_rgb`` (numpy): ``(..., 3) -> (..., 3)``."""
    colours = np.asarray(colours)
    return np.einsum("...c,dc->...d", colours, np.linalg.inv(_COLOUR_ROOT).astype(colours.dtype))


def lucid_image(spectrum, size, decay_power=1.0, fourier=True, decorrelate=True):
    """Lucid's parameterised image: spectra (b, 2, 3, size, size//2+1) (real, imaginary parts
    per decorrelated colour channel) -> images (b, size, size, 3) in (0, 1): each coefficient
    times ``lucid_scale``, inverse real FFT, divided by 4, ``decorrelated_to_rgb``, sigmoid.
    With ``fourier=False`` the parameters are pixels (b, size, size, 3) (no FFT); with
    ``decorrelate=False`` the colour mixing is left out."""
    if fourier:
        scale = lucid_scale(size, decay_power)
        real, imag = ops.multiply(spectrum[:, 0], scale), ops.multiply(spectrum[:, 1], scale)
        values = _inverse_real_dft(real, imag, size) / 4.0
    else:
        values = spectrum
    return ops.sigmoid(decorrelated_to_rgb(values) if decorrelate else values)


def lucid_shape(size, fourier=True):
    """The shape of one image's parameters: (2, 3, size, size//2+1) spectra or (size, size, 3)."""
    return (2, 3, size, size // 2 + 1) if fourier else (size, size, 3)


def lucid_spectrum(images, decay_power=1.0):
    """The inverse of ``lucid_image`` (numpy): images (b, S, S, 3) in (0, 1) -> spectra
    (b, 2, 3, S, S//2+1) float32 that ``lucid_image`` maps back to them. Values are clipped to
    [1e-4, 1 - 1e-4] first (the sigmoid never reaches 0 or 1)."""
    images = np.clip(np.asarray(images, np.float64), 1e-4, 1 - 1e-4)
    size = images.shape[1]
    channels = rgb_to_decorrelated(np.log(images / (1 - images))) * 4.0  # (b, S, S, 3)
    spectrum = np.fft.rfft2(np.moveaxis(channels, -1, 1), axes=(2, 3)) / lucid_scale(size, decay_power)
    return np.stack([spectrum.real, spectrum.imag], axis=1).astype(np.float32)


def _initial(kind, targets, seed, size, value_range=(0.0, 1.0)):
    """Start values (k, ...) float32, drawn per target from ``(seed, target)``; pixels in
    ``value_range`` (the model's input range)."""
    low, high = value_range
    starts = []
    for target in targets:
        rng = np.random.default_rng([seed, int(target)])
        if kind == "fourier":
            starts.append(rng.normal(0.0, 0.01, (2, 3, size, size // 2 + 1)))
        else:  # grey plus a little uniform noise, as in Deep Learning with Python
            starts.append(low + (high - low) * (0.5 + rng.uniform(-0.1, 0.1, (size, size, 3))))
    return np.asarray(starts, dtype=np.float32)


def _transforms(targets, seed, steps, size, regularized):
    """Per step and target, a projective transform (steps, k, 8) float32 for
    ``keras.ops.image.affine_transform``: identity when not ``regularized``; otherwise a random
    rotation (±10 degrees) and scale (0.9-1.1) about the centre and a shift (±size/16 pixels),
    drawn per target from ``(seed, target, 1)``."""
    identity = np.array([1, 0, 0, 0, 1, 0, 0, 0], np.float32)
    if not regularized:
        return np.broadcast_to(identity, (steps, len(targets), 8)).copy()
    shift = max(1, size // 16)
    centre = (size - 1) / 2
    out = np.empty((steps, len(targets), 8), np.float32)
    for j, target in enumerate(targets):
        rng = np.random.default_rng([seed, int(target), 1])
        angle = np.deg2rad(rng.uniform(-10, 10, steps))
        scale = rng.uniform(0.9, 1.1, steps)
        dx, dy = rng.integers(-shift, shift + 1, (2, steps))
        # The transform maps an output pixel to where it is sampled in the input.
        cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
        out[:, j] = np.stack([cos, -sin, centre - cos * centre + sin * centre + dx,
                              sin, cos, centre - sin * centre - cos * centre + dy,
                              np.zeros(steps), np.zeros(steps)], axis=1)
    return out


def _images(params, kind, size, value_range=(0.0, 1.0)):
    """The images (b, S, S, 3) in [0, 1] that ``params`` describe (pixels in ``value_range``
    mapped back to [0, 1])."""
    if kind == "pixels":
        low, high = value_range
        return (params - low) / (high - low)
    return keras.ops.convert_to_numpy(_fourier_image(params, size))


def deprocess(images):
    """The plain recipe's display step: per image, ``clip(0.5 + 0.15 * standardised, 0, 1)``.

    ``images``: (n, h, w, 3); returns float32 of the same shape in [0, 1]. A constant image
    comes back uniform grey.
    """
    images = np.asarray(images, dtype=np.float32)
    mean = images.mean(axis=(1, 2, 3), keepdims=True)
    std = images.std(axis=(1, 2, 3), keepdims=True)
    return np.clip(0.5 + 0.15 * (images - mean) / np.maximum(std, 1e-6), 0.0, 1.0).astype(np.float32)
