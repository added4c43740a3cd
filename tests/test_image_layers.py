"""The layers real architectures use (grouped and transposed convolutions, ceil-mode pooling,
global max pooling, LRN, padding, upsampling, channel shuffles, transposes, per-channel
PReLU): values against numpy and PyTorch, gradients against finite differences, save and
load."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from _torch import import_torch

import symnn
from symnn.errors import SymnnValueError
from symnn.gradcheck import check_grad
from symnn.layers import (
    AvgPool2D,
    ChannelShuffle,
    Conv2D,
    ConvTranspose2D,
    GlobalMaxPool2D,
    LocalResponseNorm,
    MaxPool2D,
    Pad,
    PReLU,
    Sequential,
    Transpose,
    Upsample2D,
)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 6, 7, 5))  # odd sizes: partial windows, uneven reflections


def _layers():
    """``(layer, numpy reference)`` pairs, each layer in float64."""
    d = dict(dtype="float64")
    return [
        (Conv2D(6, 4, 3, pad=1, groups=2, rng=1, **d), _grouped_conv),
        (Conv2D(6, 6, 3, groups=6, rng=2, **d), _grouped_conv),  # depthwise
        (ConvTranspose2D(6, 3, 3, stride=2, pad=1, output_padding=1, rng=3, **d), _conv_transpose),
        (ConvTranspose2D(6, 4, 3, stride=2, pad=1, groups=2, rng=4, **d), _conv_transpose),
        (PReLU(6, alpha=RNG.uniform(-1, 1, 6), axis=1, **d),
         lambda la, x: np.where(x > 0, x, la.alpha.get_value()[None, :, None, None] * x)),
        (MaxPool2D(3, stride=2, ceil_mode=True), _pool),
        (MaxPool2D(2, stride=2, pad=1, ceil_mode=True), _pool),
        (AvgPool2D(3, stride=2, ceil_mode=True), _pool),
        (AvgPool2D(3, stride=2, pad=1, ceil_mode=True, include_pad=False), _pool),
        (GlobalMaxPool2D(), lambda la, x: x.max(axis=(2, 3))),
        (LocalResponseNorm(5, alpha=1e-2, beta=0.75, k=2.0), _lrn),
        (Pad((1, 2, 0, 3)), lambda la, x: np.pad(x, ((0, 0), (0, 0), (0, 3), (1, 2)))),
        (Pad(2, "reflect"), lambda la, x: np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), "reflect")),
        (Pad((0, 1, 2, 0), "replicate"),
         lambda la, x: np.pad(x, ((0, 0), (0, 0), (2, 0), (0, 1)), "edge")),
        (Pad((2, 1, 3, 1), "circular"),
         lambda la, x: np.pad(x, ((0, 0), (0, 0), (3, 1), (2, 1)), "wrap")),
        (Upsample2D((2, 3)), lambda la, x: x.repeat(2, axis=2).repeat(3, axis=3)),
        (Upsample2D(2, "bilinear"), _bilinear),
        (ChannelShuffle(3), lambda la, x: x.reshape(2, 3, 2, 7, 5).swapaxes(1, 2).reshape(x.shape)),
        (Transpose((0, 2, 3, 1)), lambda la, x: x.transpose(0, 2, 3, 1)),
    ]


def _grouped_conv(layer, x):
    W, g = layer.W.get_value(), layer.groups
    cin, cout = x.shape[1] // g, layer.out_channels // g
    (p, _) = layer._pad
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    k = layer.kernel_size[0]
    oh, ow = xp.shape[2] - k + 1, xp.shape[3] - k + 1
    out = np.zeros((x.shape[0], layer.out_channels, oh, ow))
    for o in range(layer.out_channels):
        grp = o // cout
        for i in range(oh):
            for j in range(ow):
                patch = xp[:, grp * cin : (grp + 1) * cin, i : i + k, j : j + k]
                out[:, o, i, j] = (patch * W[o]).sum(axis=(1, 2, 3))
    return out + layer.b.get_value()[None, :, None, None]


def _conv_transpose(layer, x):
    W, s, p = layer.W.get_value(), layer.stride[0], layer.pad[0]
    k, op = layer.kernel_size[0], layer.output_padding[0]
    n, _, h, w = x.shape
    g, cin, cout = layer.groups, x.shape[1] // layer.groups, layer.out_channels // layer.groups
    full = np.zeros((n, layer.out_channels, (h - 1) * s + k + op, (w - 1) * s + k + op))
    for i in range(h):
        for j in range(w):
            for q in range(g):  # group q: its input channels into its output channels
                full[:, q * cout : (q + 1) * cout, i * s : i * s + k, j * s : j * s + k] += (
                    np.einsum("nc,cokl->nokl", x[:, q * cin : (q + 1) * cin, i, j],
                              W[q * cin : (q + 1) * cin]))  # fmt: skip
    oh, ow = (h - 1) * s - 2 * p + k + op, (w - 1) * s - 2 * p + k + op
    return full[:, :, p : p + oh, p : p + ow] + layer.b.get_value()[None, :, None, None]


def _pool(layer, x):
    (k, _), (s, _), (p, _) = layer.pool_size, layer.stride, layer.pad
    n, c, h, w = x.shape
    oh, ow = (layer._out_size(n_, k, s, p) for n_ in (h, w))
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            y0, x0 = i * s - p, j * s - p
            ys, xs = slice(max(y0, 0), min(y0 + k, h)), slice(max(x0, 0), min(x0 + k, w))
            win = x[:, :, ys, xs]
            if layer.mode == "max":
                out[:, :, i, j] = win.max(axis=(2, 3))
            else:
                inc = layer.mode == "average_inc_pad"
                count = ((min(y0 + k, h + p) - y0) * (min(x0 + k, w + p) - x0) if inc
                         else win.shape[2] * win.shape[3])  # fmt: skip
                out[:, :, i, j] = win.sum(axis=(2, 3)) / count
    return out


def _lrn(layer, x):
    c = x.shape[1]
    sq = np.pad(x**2, ((0, 0), (layer.size // 2, (layer.size - 1) // 2), (0, 0), (0, 0)))
    total = sum(sq[:, i : i + c] for i in range(layer.size))
    return x / (layer.k + layer.alpha / layer.size * total) ** layer.beta


def _bilinear(layer, x):
    def axis(size, scale):
        m = np.zeros((size * scale, size))
        for i in range(size * scale):
            src = max((i + 0.5) / scale - 0.5, 0)
            lo = min(int(src), size - 1)
            m[i, lo] += 1 - (src - lo)
            m[i, min(lo + 1, size - 1)] += src - lo
        return m

    return np.einsum("ih,nchw,jw->ncij", axis(x.shape[2], 2), x, axis(x.shape[3], 2))


CASES = _layers()
IDS = [f"{type(la).__name__}-{i}" for i, (la, _) in enumerate(CASES)]


def _apply(layer, x):
    v = pt.tensor4("x", dtype="float64", shape=(None, *x.shape[1:]))
    return pytensor.function([v], layer(v), mode="FAST_COMPILE")(x)


@pytest.mark.parametrize("case", range(len(CASES)), ids=IDS)
def test_values_match_numpy_and_gradients_finite_differences(case):
    layer, reference = CASES[case]
    np.testing.assert_allclose(_apply(layer, X), reference(layer, X), rtol=1e-10, atol=1e-12)
    v = pt.tensor4("x", dtype="float64", shape=(None, *X.shape[1:]))
    wrt = [v, *layer.params]
    err = check_grad(pt.sum(layer(v) ** 2), wrt, [X], mode="FAST_COMPILE")
    assert err < 1e-6, err


@pytest.mark.parametrize("case", range(len(CASES)), ids=IDS)
def test_saved_and_loaded_with_the_same_config_and_weights(case, tmp_path):
    layer, _ = CASES[case]
    again = symnn.load(symnn.save(Sequential([layer]), tmp_path / "l.npz")).layers[0]
    assert again.get_config() == layer.get_config()
    np.testing.assert_array_equal(_apply(again, X), _apply(layer, X))


def _torch_reference(torch, layer, x):
    F, t = torch.nn.functional, torch.from_numpy(x)
    name = type(layer).__name__
    if name in ("Conv2D", "ConvTranspose2D"):
        W, b = (torch.from_numpy(p.get_value()) for p in (layer.W, layer.b))
    if name == "Conv2D":
        return F.conv2d(t, W, b, padding=layer._pad, groups=layer.groups)
    if name == "ConvTranspose2D":
        return F.conv_transpose2d(t, W, b, stride=layer.stride, padding=layer.pad,
                                  output_padding=layer.output_padding,
                                  groups=layer.groups)  # fmt: skip
    if name == "PReLU":
        return F.prelu(t, torch.from_numpy(layer.alpha.get_value()))
    if name == "MaxPool2D":
        return F.max_pool2d(t, layer.pool_size, layer.stride, layer.pad, ceil_mode=True)
    if name == "AvgPool2D":
        return F.avg_pool2d(t, layer.pool_size, layer.stride, layer.pad, ceil_mode=True,
                            count_include_pad=layer.include_pad)  # fmt: skip
    if name == "GlobalMaxPool2D":
        return torch.amax(t, dim=(2, 3))
    if name == "LocalResponseNorm":
        return F.local_response_norm(t, layer.size, layer.alpha, layer.beta, layer.k)
    if name == "Pad":
        value = layer.value if layer.mode == "constant" else None
        return F.pad(t, layer.pad, mode=layer.mode, value=value)
    if name == "Upsample2D":
        corners = {"align_corners": False} if layer.mode == "bilinear" else {}
        return F.interpolate(t, scale_factor=layer.scale, mode=layer.mode, **corners)
    if name == "ChannelShuffle":
        return torch.nn.ChannelShuffle(layer.groups)(t)
    return t.permute(*layer.axes)


@pytest.mark.parametrize("case", range(len(CASES)), ids=IDS)
def test_values_match_pytorch(case):
    torch = import_torch()
    layer, _ = CASES[case]
    want = _torch_reference(torch, layer, X).numpy()
    np.testing.assert_allclose(_apply(layer, X), want, rtol=1e-10, atol=1e-12)


def test_the_c_backend_gives_the_same_grouped_and_transposed_convolutions():
    x32 = X.astype("float32")
    layers = (Conv2D(6, 4, 3, pad=1, groups=2, rng=1), ConvTranspose2D(6, 3, 3, stride=2, rng=3))
    for layer in layers:
        v = pt.tensor4("x", dtype="float32", shape=(None, *X.shape[1:]))
        cost = pt.sum(layer(v) ** 2)
        grads = pytensor.grad(cost, [v, layer.W])
        c = pytensor.function([v], [layer(v), *grads])(x32)  # the default (C) backend
        ref = pytensor.function([v], [layer(v), *grads], mode="FAST_COMPILE")(x32)
        for a, b in zip(c, ref, strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


@pytest.mark.slow
@pytest.mark.parametrize("case", range(len(CASES)), ids=IDS)
def test_the_default_c_backend_gives_the_numpy_values_and_the_same_gradients(case):
    """What users run: every layer's values on the C backend against numpy, and its input
    gradient against the FAST_COMPILE one that finite differences checked."""
    layer, reference = CASES[case]
    v = pt.tensor4("x", dtype="float64", shape=(None, *X.shape[1:]))
    out = layer(v)
    (grad,) = pytensor.grad(pt.sum(out**2), [v])
    value, g = pytensor.function([v], [out, grad])(X)  # the default (C) backend
    np.testing.assert_allclose(value, reference(layer, X), rtol=1e-10, atol=1e-12)
    g_ref = pytensor.function([v], grad, mode="FAST_COMPILE")(X)
    np.testing.assert_allclose(g, g_ref, rtol=1e-9, atol=1e-11)


def test_nan_in_a_channel_propagates_through_global_max_pooling():
    x = np.ones((1, 2, 3, 3), dtype="float32")
    x[0, 1, 1, 1] = np.nan
    v = pt.tensor4("x", dtype="float32")
    out = pytensor.function([v], GlobalMaxPool2D()(v))(x)
    assert out[0, 0] == 1 and np.isnan(out[0, 1])


def test_bad_arguments_are_named():
    with pytest.raises(SymnnValueError, match="groups=4 must divide in_channels=6"):
        Conv2D(6, 4, 3, groups=4)
    with pytest.raises(SymnnValueError, match="output_padding=2 must be smaller than stride"):
        ConvTranspose2D(2, 2, 3, stride=2, output_padding=2)
    with pytest.raises(SymnnValueError, match="ceil_mode=True with ignore_border=False"):
        MaxPool2D(2, ceil_mode=True, ignore_border=False)
    with pytest.raises(SymnnValueError, match="value=1.0 has no effect with mode='reflect'"):
        Pad(1, "reflect", value=1.0)
    with pytest.raises(SymnnValueError, match="reflect padding .* smaller than the image"):
        Pad(3, "reflect")(pt.tensor4("x", dtype="float32", shape=(None, 1, 3, 3)))
    with pytest.raises(SymnnValueError, match="scale=1.5 is not valid"):
        Upsample2D(1.5)
    with pytest.raises(SymnnValueError, match="groups=4 does not divide the input's 6 channels"):
        ChannelShuffle(4)(pt.tensor4("x", dtype="float32", shape=(None, 6, 2, 2)))
    with pytest.raises(SymnnValueError, match="not a permutation keeping the batch axis first"):
        Transpose((1, 0, 2, 3))


def test_batch_norm_of_images_in_training_mode_matches_numpy_and_its_gradient():
    """Statistics per channel over batch, height and width (computed on the channels-first
    rows a convolution writes), as torch.nn.BatchNorm2d in training mode."""
    from symnn.layers import BatchNorm, get_updates

    bn = BatchNorm(6, epsilon=1e-5, momentum=0.1, dtype="float64")
    bn.set_values([RNG.normal(size=6), RNG.uniform(0.5, 1.5, 6), np.zeros(6), np.ones(6)])
    conv = Conv2D(6, 6, 3, pad=1, rng=4, dtype="float64")
    v = pt.tensor4("x", dtype="float64", shape=(None, *X.shape[1:]))
    h = conv(v)
    out = bn(h)
    f = pytensor.function([v], [h, out], updates=get_updates(out), mode="FAST_COMPILE")
    hv, got = f(X)
    mean, var = hv.mean(axis=(0, 2, 3)), hv.var(axis=(0, 2, 3))
    beta, gamma = bn.beta.get_value(), bn.gamma.get_value()
    want = (hv - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) * gamma[:, None, None]
    np.testing.assert_allclose(got, want + beta[:, None, None], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn.mean.get_value(), 0.1 * mean, rtol=1e-10)
    assert check_grad(pt.sum(bn(v) ** 3), [v, bn.gamma, bn.beta], [X], mode="FAST_COMPILE") < 1e-6
    torch = import_torch()
    ref = torch.nn.BatchNorm2d(6, eps=1e-5).double().train()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(gamma)), ref.bias.copy_(torch.from_numpy(beta))
        np.testing.assert_allclose(got, ref(torch.from_numpy(hv)).numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_image_layer_keeps_its_input_float_type(dtype):
    """MaxPool2D/AvgPool2D with ceil_mode, LocalResponseNorm and Pad computed float32 images
    in float64 (PyTensor's pt.pad upcasts), which the next layer then refused."""
    from symnn.layers import AvgPool2D, LocalResponseNorm, MaxPool2D, Pad, Upsample2D

    x = pt.tensor4("x", dtype=dtype, shape=(None, 2, 5, 5))
    layers = [MaxPool2D(2, ceil_mode=True), AvgPool2D(3, 2, 1, ceil_mode=True),
              AvgPool2D(2, ceil_mode=True, include_pad=False), LocalResponseNorm(3),
              Pad(1), Pad((1, 0, 2, 1), value=-1.0), Pad(1, "reflect"), Pad(2, "replicate"),
              Pad(1, "circular"), Upsample2D(2, "bilinear")]  # fmt: skip
    for layer in layers:
        assert layer(x).dtype == dtype, layer
