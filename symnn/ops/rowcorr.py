"""One output channel per image: row ``i`` of a batch correlated with its own kernel.

``RowCorr`` computes ``out[i] = corr(x[i], w[i])``: ``x`` is ``(N, C, H, W)``, ``w`` is
``(N, C, kh, kw)`` (one kernel per image) and ``out`` is ``(N, OH, OW)``. It is what an
activation maximisation of many channels at once needs (row ``i`` maximises channel
``c[i]`` of a convolution, :meth:`symnn.layers.Conv2D.channel_per_row`): the convolution
of all ``out_channels`` channels, and the gradient of all of them through the patch matrix,
do ``out_channels`` times the work the objective reads. Both ops loop over the image
directly (no patch matrix): ``RowCorr`` and its adjoint ``RowCorrT`` (the gradient with
respect to the image, ``out_channels`` times fewer products than the convolution's input
gradient). The weights' gradient is the product of the patches with the output gradient,
built from :class:`~symnn.ops.conv.Im2Col` (an ascent does not ask for it).

C code here, numba and JAX implementations in :mod:`symnn.ops.conv_numba` and
:mod:`symnn.ops.jax_ops`; the same zero padding, stride and dilation as
:class:`~symnn.ops.conv.Im2Col`.

Examples
--------
>>> import numpy as np, pytensor.tensor as pt
>>> x = pt.tensor4("x", dtype="float64")
>>> w = pt.tensor4("w", dtype="float64")
>>> row_corr(x, w, 2).eval({x: np.arange(18.0).reshape(2, 1, 3, 3),
...                         w: np.stack([np.ones((1, 2, 2)), np.eye(2)[None]])})
array([[[ 8., 12.],
        [20., 24.]],
<BLANKLINE>
       [[22., 24.],
        [28., 30.]]])
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_type
from pytensor.graph.basic import Apply

from ..errors import SymnnTypeError
from .conv import _SHAPE_CHECK, Im2Col, _Geometry, _image, _image_sizes, _zeroed

__all__ = ["RowCorr", "RowCorrT", "row_corr"]

# for each (n, c, ky, kx): the output positions ox whose pixel lies inside the image form one
# run [lo, hi); PIXEL_OP adds the weight times the pixel into the output (RowCorr) or the
# weight times the output gradient into the pixel (RowCorrT)
_LOOP = """
        for (npy_intp n = 0; n < N; ++n)
        for (npy_intp c = 0; c < C; ++c)
        for (npy_intp ky = 0; ky < KH; ++ky)
        for (npy_intp kx = 0; kx < KW; ++kx) {{
            const {ctype} wv = wd[((n * C + c) * KH + ky) * KW + kx];
            const npy_intp off = kx * DW - PW;  /* ix = ox * SW + off */
            npy_intp lo = off >= 0 ? 0 : (-off + SW - 1) / SW;
            npy_intp hi = W - 1 - off < 0 ? 0 : (W - 1 - off) / SW + 1;
            if (lo > OW) lo = OW;
            if (hi > OW) hi = OW;
            for (npy_intp oy = 0; oy < OH; ++oy) {{
                const npy_intp iy = oy * SH - PH + ky * DH;
                if (iy < 0 || iy >= H) continue;
                {ctype}* line = img + ((n * C + c) * H + iy) * W + off;
                {ctype}* dst = plane + (n * OH + oy) * OW;
                if (SW == 1) {{
                    for (npy_intp ox = lo; ox < hi; ++ox) {{ {pixel_op_1} }}
                }} else {{
                    for (npy_intp ox = lo; ox < hi; ++ox) {{ {pixel_op} }}
                }}
            }}
        }}"""


def _kernels(w, x) -> pt.TensorVariable:
    w = pt.as_tensor_variable(w)
    if w.type.ndim != 4 or w.type.dtype != x.type.dtype:
        raise SymnnTypeError(f"w must be a 4-D {x.type.dtype} tensor (N, C, kh, kw); got {w.type}.")
    return w


def _weights_grad(geometry: tuple, x, g, w):
    """``d sum(g * row_corr(x, w)) / dw``: each image's patches times its output gradient."""
    cols = Im2Col(*geometry)(x)  # (C*kh*kw, N*OH*OW)
    n = x.shape[0]
    cols = cols.reshape((cols.shape[0], n, -1))
    return (cols * g.reshape((1, n, -1))).sum(axis=2).T.reshape(w.shape)


class _RowGeometry(_Geometry):
    def _check_c(self, w: str, like: str, fail: str) -> str:
        return f"""
        if (PyArray_NDIM({w}) != 4 || PyArray_DIMS({w})[0] != N || PyArray_DIMS({w})[1] != C
            || PyArray_DIMS({w})[2] != KH || PyArray_DIMS({w})[3] != KW) {{
            PyErr_Format(PyExc_ValueError, "{type(self).__name__}: kernels of shape (%ld, %ld, "
                         "%ld, %ld) for {like} of shape (%ld, %ld, %ld, %ld); expected one "
                         "(C, %ld, %ld) kernel per image.", (long)PyArray_DIMS({w})[0],
                         (long)PyArray_DIMS({w})[1], (long)PyArray_DIMS({w})[2],
                         (long)PyArray_DIMS({w})[3], (long)N, (long)C, (long)H, (long)W,
                         (long)KH, (long)KW);
            {fail}
        }}"""

    def _check_py(self, w: np.ndarray, shape: tuple, like: str) -> None:
        if w.shape != (shape[0], shape[1], *self.kernel):
            raise ValueError(
                f"{type(self).__name__}: kernels of shape {w.shape} for {like} of shape "
                f"{shape}; expected one {(shape[1], *self.kernel)} kernel per image."
            )

    def _views(self, xp: np.ndarray, oh: int, ow: int):
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        for i in range(kh):
            for j in range(kw):
                y0, x0 = i * dh, j * dw
                yield i, j, xp[:, :, y0 : y0 + sh * (oh - 1) + 1 : sh,
                               x0 : x0 + sw * (ow - 1) + 1 : sw]  # fmt: skip

    def c_code_cache_version(self):
        return (1,)


class RowCorr(_RowGeometry):
    """``(x (N, C, H, W), w (N, C, kh, kw)) -> (N, OH, OW)``: image ``i`` correlated with
    kernel ``i`` (zero padding, stride, dilation as :class:`~symnn.ops.conv.Im2Col`)."""

    def make_node(self, x, w):
        x = _image(x)
        w = _kernels(w, x)
        n, _, h, wd = x.type.shape
        oh = ow = None
        if h is not None and wd is not None:
            oh, ow = self.out_hw(h, wd)
        return Apply(self, [x, w], [pt.TensorType(x.type.dtype, shape=(n, oh, ow))()])

    def perform(self, node, inputs, output_storage):
        x, w = inputs
        self._check_py(w, x.shape, "images")
        oh, ow = self.out_hw(*x.shape[2:])
        (ph, pw) = self.pad
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        out = np.zeros((x.shape[0], oh, ow), dtype=x.dtype)
        for i, j, view in self._views(xp, oh, ow):
            out += np.einsum("ncyx,nc->nyx", view, w[:, :, i, j])
        output_storage[0][0] = out

    def infer_shape(self, *args):  # (fgraph, node, shapes) before PyTensor 3.3
        node, shapes = args[-2:]
        n, _, h, w = shapes[0]
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel, self.stride, self.pad, self.dilation
        return [(n, (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1,
                 (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1)]  # fmt: skip

    def pullback(self, inputs, outputs, cotangents):
        x, w = inputs
        (g,) = cotangents
        geometry = self._geometry()
        return [RowCorrT(*geometry)(g, w, x), _weights_grad(geometry, x, g, w)]

    def c_code(self, node, name, inames, onames, sub):
        """The C code template of the per-image correlation (PyTensor fills in the names)."""
        (x, w), (out,), fail = inames, onames, sub["fail"]
        ctype, typenum = node.inputs[0].type.dtype_specs()[1], node.outputs[0].type.dtype_specs()[2]
        loop = _LOOP.format(ctype=ctype, pixel_op_1="dst[ox] += wv * line[ox];",
                            pixel_op="dst[ox] += wv * line[ox * SW];")  # fmt: skip
        free = "Py_DECREF(src); Py_DECREF(ker); "
        return f"""
        {{
        {self._defines()}
        PyArrayObject* src = (PyArrayObject*)PyArray_GETCONTIGUOUS({x});
        if (!src) {fail}
        PyArrayObject* ker = (PyArrayObject*)PyArray_GETCONTIGUOUS({w});
        if (!ker) {{ Py_DECREF(src); {fail} }}
        {_image_sizes("src", node.inputs[0], "row_corr", free + fail)}
        const npy_intp OH = (H + 2 * PH - DH * (KH - 1) - 1) / SH + 1;
        const npy_intp OW = (W + 2 * PW - DW * (KW - 1) - 1) / SW + 1;
        {_SHAPE_CHECK.format(what="row_corr", fail=free + fail)}
        {self._check_c("ker", "images", free + fail)}
        npy_intp dims[3] = {{N, OH, OW}};
        {_zeroed(out, "dims", typenum, free + fail, ndim=3)}
        {ctype}* img = ({ctype}*)PyArray_DATA(src);
        const {ctype}* wd = (const {ctype}*)PyArray_DATA(ker);
        {ctype}* plane = ({ctype}*)PyArray_DATA({out});
        {loop}
        Py_DECREF(src);
        Py_DECREF(ker);
        }}
        """


class RowCorrT(_RowGeometry):
    """The adjoint of :class:`RowCorr` in the image: ``(g (N, OH, OW), w (N, C, kh, kw),
    like (N, C, H, W)) -> (N, C, H, W)``, each output gradient spread back through its
    image's kernel (only ``like``'s shape is read)."""

    def make_node(self, g, w, like):
        like = _image(like)
        g, w = pt.as_tensor_variable(g), _kernels(w, like)
        if g.type.ndim != 3 or g.type.dtype != like.type.dtype:
            raise SymnnTypeError(f"g must be a 3-D {like.type.dtype} tensor; got {g.type}.")
        return Apply(self, [g, w, like], [like.type()])

    def perform(self, node, inputs, output_storage):
        g, w, like = inputs
        self._check_py(w, like.shape, "an image gradient")
        n, c, h, wd = like.shape
        oh, ow = self.out_hw(h, wd)
        if g.shape != (n, oh, ow):
            raise ValueError(f"RowCorrT: g of shape {g.shape}; expected {(n, oh, ow)}.")
        (ph, pw) = self.pad
        xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), dtype=g.dtype)
        for i, j, view in self._views(xp, oh, ow):
            view += np.einsum("nyx,nc->ncyx", g, w[:, :, i, j])
        output_storage[0][0] = np.ascontiguousarray(xp[:, :, ph : ph + h, pw : pw + wd])

    def infer_shape(self, *args):  # (fgraph, node, shapes) before PyTensor 3.3
        node, shapes = args[-2:]
        return [shapes[2]]

    def connection_pattern(self, node):
        return [[True], [True], [False]]

    def pullback(self, inputs, outputs, cotangents):
        g, w, _ = inputs
        (d,) = cotangents
        geometry = self._geometry()
        return [RowCorr(*geometry)(d, w), _weights_grad(geometry, d, g, w), disconnected_type()]

    def c_code(self, node, name, inames, onames, sub):
        """The C code template of the adjoint (PyTensor fills in the names)."""
        (g, w, like), (out,), fail = inames, onames, sub["fail"]
        ctype, typenum = node.inputs[0].type.dtype_specs()[1], node.outputs[0].type.dtype_specs()[2]
        loop = _LOOP.format(ctype=ctype, pixel_op_1="line[ox] += wv * dst[ox];",
                            pixel_op="line[ox * SW] += wv * dst[ox];")  # fmt: skip
        free = "Py_DECREF(gs); Py_DECREF(ker); "
        return f"""
        {{
        {self._defines()}
        PyArrayObject* gs = (PyArrayObject*)PyArray_GETCONTIGUOUS({g});
        if (!gs) {fail}
        PyArrayObject* ker = (PyArrayObject*)PyArray_GETCONTIGUOUS({w});
        if (!ker) {{ Py_DECREF(gs); {fail} }}
        {_image_sizes(like, node.inputs[2], "row_corr_t", free + fail)}
        const npy_intp OH = (H + 2 * PH - DH * (KH - 1) - 1) / SH + 1;
        const npy_intp OW = (W + 2 * PW - DW * (KW - 1) - 1) / SW + 1;
        {_SHAPE_CHECK.format(what="row_corr_t", fail=free + fail)}
        {self._check_c("ker", "an image gradient", free + fail)}
        if (PyArray_NDIM(gs) != 3 || PyArray_DIMS(gs)[0] != N || PyArray_DIMS(gs)[1] != OH
            || PyArray_DIMS(gs)[2] != OW) {{
            PyErr_Format(PyExc_ValueError, "RowCorrT: g of shape (%ld, %ld, %ld); expected "
                         "(%ld, %ld, %ld).", (long)PyArray_DIMS(gs)[0], (long)PyArray_DIMS(gs)[1],
                         (long)PyArray_DIMS(gs)[2], (long)N, (long)OH, (long)OW);
            {free} {fail}
        }}
        npy_intp dims[4] = {{N, C, H, W}};
        {_zeroed(out, "dims", typenum, free + fail)}
        {ctype}* img = ({ctype}*)PyArray_DATA({out});
        const {ctype}* wd = (const {ctype}*)PyArray_DATA(ker);
        {ctype}* plane = ({ctype}*)PyArray_DATA(gs);
        {loop}
        Py_DECREF(gs);
        Py_DECREF(ker);
        }}
        """


def row_corr(x, w, kernel, stride=1, pad=0, dilation=1):
    """Image ``i`` of ``x`` (N, C, H, W) correlated with kernel ``i`` of ``w``
    (N, C, kh, kw): ``(N, OH, OW)``, differentiable in both (see the module docstring)."""
    return RowCorr(kernel, stride, pad, dilation)(x, w)
