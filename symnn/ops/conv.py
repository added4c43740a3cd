"""Convolution as im2col + GEMM, and 2-D pooling, with C code.

PyTensor 3 has no fast 2-D convolution or pooling (its C ``CorrMM`` and ``Pool`` ops were
removed), so symnn carries its own:

- :class:`Im2Col` ``(N, C, H, W) -> (C*kh*kw, N*OH*OW)``: the patches of a batch of images
  as columns (Caffe's layout), row ``(c*kh + i)*kw + j``, column ``(n*OH + y)*OW + x``; zero
  padding is applied as the patches are copied (no padded copy of the input).
  :class:`Col2Im` is its adjoint (the scatter-add of patches back into an image); each is the
  other's gradient. A convolution is then ``dot(W.reshape((F, -1)), im2col(x))``, an
  ``(F, N, OH, OW)`` result whose bias, nonlinearity and gradients run on contiguous memory;
  the forward pass and both gradients are BLAS GEMMs. (Patches as rows, ``(N*OH*OW,
  C*kh*kw)``, were measured slower: the GEMM's ``(N*OH*OW, F)`` result is channels-last, and
  the bias, nonlinearity, pooling and the bias gradient then all read it across strides.)
- :class:`Pool2D` (``"max"``, ``"average_inc_pad"``, ``"average_exc_pad"``) and
  :class:`Pool2DGrad`. The gradient of max pooling goes to the first maximum of each window
  in row-major order (as PyTorch and ONNX), not to every tied element.

``ignore_border=False`` (Theano's and Lasagne's option) keeps partial windows at the bottom and
right edges; it needs ``pad=0``.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_type, grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.link.c.op import COp

from ..errors import SymnnTypeError, SymnnValueError

__all__ = [
    "Im2Col",
    "Col2Im",
    "Pool2D",
    "Pool2DGrad",
    "im2col",
    "col2im",
    "pool_2d",
    "conv_output_size",
    "pool_output_size",
    "POOL_MODES",
]

POOL_MODES = ("max", "average_inc_pad", "average_exc_pad")


def _pair(value, name: str, *, minimum: int) -> tuple[int, int]:
    pair = tuple(value) if isinstance(value, tuple | list) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, int | np.integer) for v in pair):
        raise SymnnTypeError(f"{name} must be an int or a pair of ints; got {value!r}.")
    if min(pair) < minimum:
        raise SymnnValueError(f"{name}={value!r} is not valid; expected values >= {minimum}.")
    return int(pair[0]), int(pair[1])


def conv_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    """Output length of a convolution along one axis (PyTorch's and Lasagne's formula)."""
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def pool_output_size(size: int, pool: int, stride: int, pad: int, ignore_border: bool) -> int:
    """Output length of pooling along one axis; ``ignore_border=False`` keeps a partial last
    window (Theano's formula)."""
    if ignore_border:
        return (size + 2 * pad - pool) // stride + 1
    if stride >= pool:
        return (size - 1) // stride + 1
    return max(0, (size - 1 - pool + stride) // stride) + 1


def _image(x):
    x = pt.as_tensor_variable(x)
    if x.type.ndim != 4 or x.type.dtype not in ("float32", "float64"):
        raise SymnnTypeError(f"expected a float 4-D tensor (N, C, H, W); got {x.type}.")
    return x


class _Geometry(COp):
    """Shared by the ops of one window geometry: kernel, stride, pad, dilation (pairs)."""

    __props__ = ("kernel", "stride", "pad", "dilation", "ones_row")

    def __init__(self, kernel, stride=1, pad=0, dilation=1, *, ones_row: bool = False):
        self.kernel = _pair(kernel, "kernel", minimum=1)
        self.stride = _pair(stride, "stride", minimum=1)
        self.pad = _pair(pad, "pad", minimum=0)
        self.dilation = _pair(dilation, "dilation", minimum=1)
        #: the patch matrix has one more row of ones (Im2Col writes it, Col2Im skips it), so
        #: a bias is one more column of the weight matrix and its gradient comes out of the
        #: same GEMM as the weights'
        self.ones_row = bool(ones_row)

    def _geometry(self) -> tuple:
        return self.kernel, self.stride, self.pad, self.dilation

    def out_hw(self, h: int, w: int) -> tuple[int, int]:
        args = zip((h, w), self.kernel, self.stride, self.pad, self.dilation)
        oh, ow = (conv_output_size(*a) for a in args)
        if oh <= 0 or ow <= 0:
            raise ValueError(
                f"{type(self).__name__}: the {self.kernel} kernel (dilation {self.dilation}) "
                f"does not fit the {h}x{w} input with padding {self.pad}."
            )
        return oh, ow

    def _defines(self) -> str:
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel, self.stride, self.pad, self.dilation
        return (
            f"const npy_intp KH = {kh}, KW = {kw}, SH = {sh}, SW = {sw}, PH = {ph}, PW = {pw}, "
            f"DH = {dh}, DW = {dw};"
        )

    def _windows(self, x: np.ndarray):
        """``(i, j, patch)``: for each kernel offset, the (N, C, OH, OW) input values it sees
        (zero outside the image), as views of a padded copy."""
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel, self.stride, self.pad, self.dilation
        oh, ow = self.out_hw(*x.shape[2:])
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        for i in range(kh):
            for j in range(kw):
                y0, x0 = i * dh, j * dw
                yield (
                    i,
                    j,
                    xp[:, :, y0 : y0 + sh * (oh - 1) + 1 : sh, x0 : x0 + sw * (ow - 1) + 1 : sw],
                )

    def c_headers(self, **kwargs):
        return ["<string.h>"]

    def c_code_cache_version(self):
        return (5,)


def _image_sizes(array: str, var, what: str, fail: str) -> str:
    """C code: ``N``, ``C``, ``H``, ``W``, the sizes of the 4-D ``array``; ``C``, ``H`` and
    ``W`` as constants where the variable's type knows them, checked against the array (the
    loops over a row then have a length the compiler knows: a convolution's 8-pixel rows are
    one vector instruction instead of a loop)."""
    shape = var.type.shape
    decls, checks = [f"const npy_intp N = PyArray_DIMS({array})[0];"], []
    for i, name in enumerate("CHW", start=1):
        if shape[i] is None:
            decls.append(f"const npy_intp {name} = PyArray_DIMS({array})[{i}];")
        else:
            decls.append(f"const npy_intp {name} = {int(shape[i])};")
            checks.append(f"PyArray_DIMS({array})[{i}] != {int(shape[i])}")
    if checks:
        decls.append(f"""
        if ({" || ".join(checks)}) {{
            PyErr_Format(PyExc_ValueError, "{what}: an input of shape (%ld, %ld, %ld, %ld); its "
                         "type says {tuple(shape)}.", (long)PyArray_DIMS({array})[0],
                         (long)PyArray_DIMS({array})[1], (long)PyArray_DIMS({array})[2],
                         (long)PyArray_DIMS({array})[3]);
            {fail}
        }}""")
    return "\n        ".join(decls)


# the plane of output q = 0 .. N*C-1 in the input's memory order (channels outer when the
# input is channels first in memory), ``nc = n * C + c`` its index in (N, C) order
_PLANE = """
            const npy_intp nc = CFIRST ? (q % N) * C + q / N : q;
            const {ctype}* plane = in + (nc / C) * XS0 + (nc % C) * XS1;"""

_SHAPE_CHECK = """
        if (OH <= 0 || OW <= 0) {{
            PyErr_Format(PyExc_ValueError, "{what}: the (%ld, %ld) kernel does not fit the "
                         "%ldx%ld input with padding (%ld, %ld).", (long)KH, (long)KW,
                         (long)H, (long)W, (long)PH, (long)PW);
            {fail}
        }}"""


def _zeroed(out: str, dims: str, typenum: int, fail: str, ndim: int = 4) -> str:
    """C code: ``out`` a zeroed C-contiguous ``ndim``-D array of ``dims``, the previous
    call's buffer reused when it fits (a fresh buffer pays a page fault per 4 KiB at first
    touch)."""
    same = " && ".join(f"PyArray_DIMS({out})[{i}] == {dims}[{i}]" for i in range(ndim))
    return f"""
        if ({out} && PyArray_IS_C_CONTIGUOUS({out}) && PyArray_NDIM({out}) == {ndim}
            && {same}) {{
            memset(PyArray_DATA({out}), 0, PyArray_NBYTES({out}));
        }} else {{
            Py_XDECREF({out});
            {out} = (PyArrayObject*)PyArray_ZEROS({ndim}, {dims}, {typenum}, 0);
            if (!{out}) {{ {fail} }}
        }}"""


# one loop nest for both directions: row k = (c, ky, kx) of the patch matrix, column
# (n, oy, ox); for each (k, n, oy) the output positions ox whose pixel lies inside the image
# form one run [lo, hi) (contiguous in the image at stride 1). PIXEL_OP copies a pixel into the
# patch matrix (im2col) or adds the patch value back into the image (col2im); EDGE_OP handles
# positions that fall into the padding (im2col writes zeros).
_LOOP = """
        for (npy_intp c = 0; c < C; ++c)
        for (npy_intp ky = 0; ky < KH; ++ky)
        for (npy_intp kx = 0; kx < KW; ++kx) {{
            const npy_intp k = (c * KH + ky) * KW + kx;
            const npy_intp off = kx * DW - PW;  /* ix = ox * SW + off */
            npy_intp lo = off >= 0 ? 0 : (-off + SW - 1) / SW;
            npy_intp hi = W - 1 - off < 0 ? 0 : (W - 1 - off) / SW + 1;
            if (lo > OW) lo = OW;
            if (hi > OW) hi = OW;
            if (hi < lo) hi = lo;
            for (npy_intp n = 0; n < N; ++n)
            for (npy_intp oy = 0; oy < OH; ++oy) {{
                {ctype}* dst = cols + k * NP + (n * OH + oy) * OW;
                const npy_intp iy = oy * SH - PH + ky * DH;
                if (iy < 0 || iy >= H) {{ {edge_row} continue; }}
                {ctype}* line = img + ((n * C + c) * H + iy) * W + off;
                {edge_lo}
                if (SW == 1) {{
                    for (npy_intp ox = lo; ox < hi; ++ox) {{ {pixel_op_1} }}
                }} else {{
                    for (npy_intp ox = lo; ox < hi; ++ox) {{ {pixel_op} }}
                }}
                {edge_hi}
            }}
        }}"""


class Im2Col(_Geometry):
    """``(N, C, H, W) -> (C*kh*kw, N*OH*OW)``: the zero-padded patches as columns (see the
    module docstring for the layout)."""

    def make_node(self, x):
        x = _image(x)
        n, c = x.type.shape[:2]
        cols = None
        if None not in x.type.shape:
            oh, ow = self.out_hw(*x.type.shape[2:])
            cols = n * oh * ow
        k = None if c is None else c * self.kernel[0] * self.kernel[1] + self.ones_row
        return Apply(self, [x], [pt.TensorType(x.type.dtype, shape=(k, cols))()])

    def perform(self, node, inputs, output_storage):
        (x,) = inputs
        n, c = x.shape[:2]
        oh, ow = self.out_hw(*x.shape[2:])
        out = np.empty((c, *self.kernel, n, oh, ow), dtype=x.dtype)
        for i, j, patch in self._windows(x):
            out[:, i, j] = patch.transpose(1, 0, 2, 3)
        out = out.reshape(c * self.kernel[0] * self.kernel[1], n * oh * ow)
        if self.ones_row:
            out = np.concatenate([out, np.ones((1, out.shape[1]), dtype=x.dtype)])
        output_storage[0][0] = out

    def infer_shape(self, *args):  # (fgraph, node, shapes) before PyTensor 3.3
        node, shapes = args[-2:]
        n, c, h, w = shapes[0]
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel, self.stride, self.pad, self.dilation
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        return [(c * kh * kw + int(self.ones_row), n * oh * ow)]

    def pullback(self, inputs, outputs, cotangents):
        (x,) = inputs
        return [Col2Im(*self._geometry(), ones_row=self.ones_row)(cotangents[0], x)]

    def c_code(self, node, name, inames, onames, sub):
        """The C code template of im2col (PyTensor fills in the names)."""
        (x,), (out,), fail = inames, onames, sub["fail"]
        ctype, typenum = node.inputs[0].type.dtype_specs()[1], node.outputs[0].type.dtype_specs()[2]
        loop = _LOOP.format(
            ctype=ctype,
            edge_row=f"for (npy_intp ox = 0; ox < OW; ++ox) dst[ox] = ({ctype})0;",
            edge_lo=f"for (npy_intp ox = 0; ox < lo; ++ox) dst[ox] = ({ctype})0;",
            edge_hi=f"for (npy_intp ox = hi; ox < OW; ++ox) dst[ox] = ({ctype})0;",
            pixel_op_1="dst[ox] = line[ox];",
            pixel_op="dst[ox] = line[ox * SW];",
        )
        return f"""
        {{
        {self._defines()}
        PyArrayObject* src = (PyArrayObject*)PyArray_GETCONTIGUOUS({x});
        if (!src) {fail}
        {_image_sizes("src", node.inputs[0], "im2col", "Py_DECREF(src); " + fail)}
        const npy_intp OH = (H + 2 * PH - DH * (KH - 1) - 1) / SH + 1;
        const npy_intp OW = (W + 2 * PW - DW * (KW - 1) - 1) / SW + 1;
        {_SHAPE_CHECK.format(what="im2col", fail="Py_DECREF(src); " + fail)}
        const npy_intp NP = N * OH * OW;
        npy_intp dims[2] = {{C * KH * KW + {int(self.ones_row)}, NP}};
        if (!({out} && PyArray_IS_C_CONTIGUOUS({out}) && PyArray_DIMS({out})[0] == dims[0]
              && PyArray_DIMS({out})[1] == dims[1])) {{
            Py_XDECREF({out});
            {out} = (PyArrayObject*)PyArray_EMPTY(2, dims, {typenum}, 0);
            if (!{out}) {{ Py_DECREF(src); {fail} }}
        }}
        {ctype}* img = ({ctype}*)PyArray_DATA(src);
        {ctype}* cols = ({ctype}*)PyArray_DATA({out});
        {loop}
        if ({int(self.ones_row)}) {{
            {ctype}* ones = cols + C * KH * KW * NP;
            for (npy_intp j = 0; j < NP; ++j) ones[j] = ({ctype})1;
        }}
        Py_DECREF(src);
        }}
        """


class Col2Im(_Geometry):
    """The adjoint of :class:`Im2Col`: patches ``(C*kh*kw, N*OH*OW)`` added back into an
    image shaped like ``like`` (only its shape is read)."""

    def make_node(self, cols, like):
        cols, like = pt.as_tensor_variable(cols), _image(like)
        if cols.type.ndim != 2 or cols.type.dtype != like.type.dtype:
            raise SymnnTypeError(f"cols must be a {like.type.dtype} matrix; got {cols.type}.")
        return Apply(self, [cols, like], [like.type()])

    def perform(self, node, inputs, output_storage):
        cols, like = inputs
        n, c, h, w = like.shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel, self.stride, self.pad, self.dilation
        oh, ow = self.out_hw(h, w)
        patches = cols[: c * kh * kw].reshape(c, kh, kw, n, oh, ow)
        xp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
        for i in range(kh):
            for j in range(kw):
                y0, x0 = i * dh, j * dw
                view = xp[:, :, y0 : y0 + sh * (oh - 1) + 1 : sh, x0 : x0 + sw * (ow - 1) + 1 : sw]
                view += patches[:, i, j].transpose(1, 0, 2, 3)
        output_storage[0][0] = np.ascontiguousarray(xp[:, :, ph : ph + h, pw : pw + w])

    def infer_shape(self, *args):  # (fgraph, node, shapes) before PyTensor 3.3
        node, shapes = args[-2:]
        return [shapes[1]]

    def connection_pattern(self, node):
        return [[True], [False]]

    def pullback(self, inputs, outputs, cotangents):
        patches = Im2Col(*self._geometry())(cotangents[0])
        if self.ones_row:  # the row of ones does not reach the image: zero gradient
            patches = pt.concatenate([patches, pt.zeros_like(patches[:1])])
        return [patches, disconnected_type()]

    def c_code(self, node, name, inames, onames, sub):
        """The C code template of col2im (PyTensor fills in the names)."""
        (cols_in, like), (out,), fail = inames, onames, sub["fail"]
        ctype, typenum = node.inputs[0].type.dtype_specs()[1], node.outputs[0].type.dtype_specs()[2]
        loop = _LOOP.format(
            ctype=ctype, edge_row="", edge_lo="", edge_hi="",
            pixel_op_1="line[ox] += dst[ox];", pixel_op="line[ox * SW] += dst[ox];",
        )  # fmt: skip
        return f"""
        {{
        {self._defines()}
        {_image_sizes(like, node.inputs[1], "col2im", fail)}
        const npy_intp OH = (H + 2 * PH - DH * (KH - 1) - 1) / SH + 1;
        const npy_intp OW = (W + 2 * PW - DW * (KW - 1) - 1) / SW + 1;
        {_SHAPE_CHECK.format(what="col2im", fail=fail)}
        const npy_intp NP = N * OH * OW;
        if (PyArray_DIMS({cols_in})[0] != C * KH * KW + {int(self.ones_row)}
            || PyArray_DIMS({cols_in})[1] != NP) {{
            PyErr_Format(PyExc_ValueError, "col2im: patches of shape (%ld, %ld); expected "
                         "(%ld, %ld).", (long)PyArray_DIMS({cols_in})[0],
                         (long)PyArray_DIMS({cols_in})[1],
                         (long)(C * KH * KW + {int(self.ones_row)}), (long)NP);
            {fail}
        }}
        PyArrayObject* src = (PyArrayObject*)PyArray_GETCONTIGUOUS({cols_in});
        if (!src) {fail}
        {_zeroed(out, f"PyArray_DIMS({like})", typenum, "Py_DECREF(src); " + fail)}
        {ctype}* img = ({ctype}*)PyArray_DATA({out});
        {ctype}* cols = ({ctype}*)PyArray_DATA(src);
        {loop}
        Py_DECREF(src);
        }}
        """


def im2col(x, kernel, stride=1, pad=0, dilation=1, *, ones_row=False):
    """The patches of a batch of images ``x`` (N, C, H, W), one column per output position.

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.tensor4("x", dtype="float64")
    >>> im2col(x, 2).eval({x: np.arange(9.0).reshape(1, 1, 3, 3)})
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    >>> im2col(x, 2, stride=2, pad=1).eval({x: np.arange(9.0).reshape(1, 1, 3, 3)})[3]
    array([0., 2., 6., 8.])
    """
    return Im2Col(kernel, stride, pad, dilation, ones_row=ones_row)(x)


def col2im(cols, like, kernel, stride=1, pad=0, dilation=1, *, ones_row=False):
    """Patches added back into an image shaped like ``like`` (the adjoint of :func:`im2col`)."""
    return Col2Im(kernel, stride, pad, dilation, ones_row=ones_row)(cols, like)


class _Pooling(COp):
    __props__ = ("mode", "pool", "stride", "pad", "ignore_border")

    def __init__(self, mode="max", pool=2, stride=None, pad=0, ignore_border=True):
        if mode not in POOL_MODES:
            raise SymnnValueError(f"mode={mode!r} is not known; expected one of {POOL_MODES}.")
        self.mode = mode
        self.pool = _pair(pool, "pool_size", minimum=1)
        self.stride = self.pool if stride is None else _pair(stride, "stride", minimum=1)
        self.pad = _pair(pad, "pad", minimum=0)
        self.ignore_border = bool(ignore_border)
        if self.pad[0] >= self.pool[0] or self.pad[1] >= self.pool[1]:
            raise SymnnValueError(
                f"pad={pad!r} must be smaller than pool_size={pool!r} (a window of padding only)."
            )
        if not self.ignore_border and self.pad != (0, 0):
            raise SymnnValueError("ignore_border=False needs pad=0 (as in Theano and Lasagne).")

    def out_hw(self, h: int, w: int) -> tuple[int, int]:
        args = zip((h, w), self.pool, self.stride, self.pad)
        return tuple(pool_output_size(*a, self.ignore_border) for a in args)

    def _defines(self, x) -> str:
        (kh, kw), (sh, sw), (ph, pw) = self.pool, self.stride, self.pad
        ib = int(self.ignore_border)
        return f"""
        const npy_intp KH = {kh}, KW = {kw}, SH = {sh}, SW = {sw}, PH = {ph}, PW = {pw};
        {_image_sizes("src", x, "pool_2d", "Py_DECREF(src); FAIL_HERE")}
        npy_intp OH, OW;
        if ({ib}) {{ OH = (H + 2 * PH - KH) / SH + 1; OW = (W + 2 * PW - KW) / SW + 1; }}
        else {{
            const npy_intp ry = H - 1 - KH + SH, rx = W - 1 - KW + SW;
            OH = SH >= KH ? (H - 1) / SH + 1 : (ry > 0 ? ry / SH : 0) + 1;
            OW = SW >= KW ? (W - 1) / SW + 1 : (rx > 0 ? rx / SW : 0) + 1;
        }}
        if (({ib} && (H + 2 * PH < KH || W + 2 * PW < KW)) || H == 0 || W == 0) {{
            PyErr_Format(PyExc_ValueError, "pool_2d: the %ldx%ld window does not fit the %ldx%ld "
                         "input.", (long)KH, (long)KW, (long)H, (long)W);
            Py_DECREF(src); FAIL_HERE
        }}"""

    # for each output position: the window [y0, y1) x [x0, x1) inside the image and the
    # divisor of average pooling
    _WINDOW = """
            const npy_intp xs = ox * SW - PW;
            const npy_intp ye = ys + KH < H + PH ? ys + KH : H + PH;
            const npy_intp xe = xs + KW < W + PW ? xs + KW : W + PW;
            const npy_intp y0 = ys > 0 ? ys : 0, x0 = xs > 0 ? xs : 0;
            const npy_intp y1 = ye < H ? ye : H, x1 = xe < W ? xe : W;
            const double count = INC_PAD ? (double)((ye - ys) * (xe - xs))
                                         : (double)((y1 - y0) * (x1 - x0));"""

    def _prelude(self, node, x: str, ctype: str, fail: str) -> str:
        """C code: ``src``, the input read through its strides (``XS0``, ``XS1``, ``XSY``,
        ``XSX`` in elements; a contiguous copy only for a misaligned array), and the sizes."""
        defines = self._defines(node.inputs[0]).replace("FAIL_HERE", fail)
        return f"""
        PyArrayObject* src = {x};
        const int esz = (int)sizeof({ctype});
        int strided_ok = PyArray_ISALIGNED(src);
        for (int d = 0; strided_ok && d < 4; ++d) strided_ok = PyArray_STRIDES(src)[d] % esz == 0;
        if (strided_ok) Py_INCREF(src);
        else {{ src = (PyArrayObject*)PyArray_GETCONTIGUOUS({x}); if (!src) {fail} }}
        const npy_intp XS0 = PyArray_STRIDES(src)[0] / esz, XS1 = PyArray_STRIDES(src)[1] / esz;
        const npy_intp XSY = PyArray_STRIDES(src)[2] / esz, XSX = PyArray_STRIDES(src)[3] / esz;
        const int INC_PAD = {int(self.mode == "average_inc_pad")};
        {defines}
        const int CFIRST = N > 1 && C > 1 && XS1 > XS0;"""

    def _row_loops(self, ctype: str, prefix: str, inside: str, border: str) -> str:
        """C code: for every output position of one plane, ``prefix`` then ``inside`` (the
        window lies inside the image; ``p`` points at its first pixel) or ``border`` (the
        general window of :attr:`_WINDOW`). The inside positions of a row form one range
        without a test in the loop, compiled twice (for contiguous rows and for any
        stride), so the compiler vectorises it across output positions."""
        fast = f"""
                    const npy_intp xs = ox * SW - PW;
                    const {ctype}* p = plane + ys * XSY + xs * XSX;
                    {prefix}
                    {inside}"""
        general = f"""
                    {{ {self._WINDOW}
                    (void)count;
                    {prefix}
                    {border} }}"""
        return f"""
            for (npy_intp oy = 0; oy < OH; ++oy) {{
                const npy_intp ys = oy * SH - PH;
                npy_intp lo = 0, hi = 0;
                if (ys >= 0 && ys + KH <= H) {{
                    lo = (PW + SW - 1) / SW;
                    hi = W + PW - KW >= 0 ? (W + PW - KW) / SW + 1 : 0;
                    if (lo > OW) lo = OW;
                    if (hi > OW) hi = OW;
                    if (hi < lo) hi = lo;
                }}
                for (npy_intp ox = 0; ox < lo; ++ox) {general}
                if (XSX == 1) {{
                    for (npy_intp ox = lo; ox < hi; ++ox) {{ {fast.replace("XSX", "1")} }}
                }} else {{
                    for (npy_intp ox = lo; ox < hi; ++ox) {{ {fast} }}
                }}
                for (npy_intp ox = hi; ox < OW; ++ox) {general}
            }}"""

    def _windows(self, x: np.ndarray):
        """``(oy, ox, y0, y1, x0, x1, count)`` for every output position (numpy path)."""
        return self.window_bounds(*x.shape[2:])

    def window_bounds(self, h: int, w: int):
        """``(oy, ox, y0, y1, x0, x1, count)`` for every output position of an ``h x w``
        image: the window inside the image and the divisor of average pooling."""
        (kh, kw), (sh, sw), (ph, pw) = self.pool, self.stride, self.pad
        oh, ow = self.out_hw(h, w)
        too_small = self.ignore_border and (h + 2 * ph < kh or w + 2 * pw < kw)
        if oh <= 0 or ow <= 0 or too_small:
            raise ValueError("pool_2d: the window does not fit the input.")
        for oy in range(oh):
            ys = oy * sh - ph
            ye = min(ys + kh, h + ph)
            for ox in range(ow):
                xs = ox * sw - pw
                xe = min(xs + kw, w + pw)
                y0, x0, y1, x1 = max(ys, 0), max(xs, 0), min(ye, h), min(xe, w)
                inc = self.mode == "average_inc_pad"
                count = (ye - ys) * (xe - xs) if inc else (y1 - y0) * (x1 - x0)
                yield oy, ox, y0, y1, x0, x1, count

    def c_headers(self, **kwargs):
        return ["<string.h>"]

    def c_code_cache_version(self):
        return (15,)


class Pool2D(_Pooling):
    """2-D pooling of ``(N, C, H, W)`` over windows of ``pool`` with ``stride`` and ``pad``."""

    def make_node(self, x):
        x = _image(x)
        h, w = x.type.shape[2:]
        oh, ow = (None, None) if None in (h, w) else self.out_hw(h, w)
        out = pt.TensorType(x.type.dtype, shape=(*x.type.shape[:2], oh, ow))
        return Apply(self, [x], [out()])

    def perform(self, node, inputs, output_storage):
        (x,) = inputs
        oh, ow = self.out_hw(*x.shape[2:])
        out = np.empty((*x.shape[:2], oh, ow), dtype=x.dtype)
        for oy, ox, y0, y1, x0, x1, count in self._windows(x):
            win = x[:, :, y0:y1, x0:x1]
            if self.mode == "max":
                out[:, :, oy, ox] = win.max(axis=(2, 3))
            else:
                out[:, :, oy, ox] = win.sum(axis=(2, 3)) / count
        output_storage[0][0] = out

    def infer_shape(self, *args):  # (fgraph, node, shapes) before PyTensor 3.3
        node, shapes = args[-2:]
        n, c, h, w = shapes[0]
        (kh, kw), (sh, sw), (ph, pw) = self.pool, self.stride, self.pad
        if self.ignore_border:
            return [(n, c, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)]

        def size(s, k, st):
            if st >= k:
                return (s - 1) // st + 1
            return pt.maximum(0, (s - 1 - k + st) // st) + 1

        return [(n, c, size(h, kh, sh), size(w, kw, sw))]

    def pullback(self, inputs, outputs, cotangents):
        (x,) = inputs
        args = (self.mode, self.pool, self.stride, self.pad, self.ignore_border)
        return [Pool2DGrad(*args)(x, cotangents[0])]

    def c_code(self, node, name, inames, onames, sub):
        """The C code template of pooling (PyTensor fills in the names)."""
        (x,), (out,), fail = inames, onames, sub["fail"]
        ctype, typenum = node.inputs[0].type.dtype_specs()[1], node.outputs[0].type.dtype_specs()[2]
        # windows inside the image (all but the border ones) take a fixed-size loop the
        # compiler unrolls; a NaN, once met, stays the window's maximum, as in PyTorch
        if self.mode == "max":
            inside = f"""
                {ctype} best = p[0];
                for (npy_intp ky = 0; ky < KH; ++ky)
                    for (npy_intp kx = 0; kx < KW; ++kx) {{
                        const {ctype} v = p[ky * XSY + kx * XSX];
                        best = (v <= best || best != best) ? best : v;
                    }}
                ob[ox] = best;"""
            body = f"""
                {ctype} best = plane[y0 * XSY + x0 * XSX];
                for (npy_intp y = y0; y < y1; ++y)
                    for (npy_intp xx = x0; xx < x1; ++xx) {{
                        const {ctype} v = plane[y * XSY + xx * XSX];
                        best = (v <= best || best != best) ? best : v;
                    }}
                ob[ox] = best;"""
        else:
            inside = f"""
                {ctype} s = 0;
                for (npy_intp ky = 0; ky < KH; ++ky)
                    for (npy_intp kx = 0; kx < KW; ++kx) s += p[ky * XSY + kx * XSX];
                ob[ox] = s * ({ctype})(1.0 / (KH * KW));"""
            body = f"""
                double s = 0;
                for (npy_intp y = y0; y < y1; ++y)
                    for (npy_intp xx = x0; xx < x1; ++xx) s += plane[y * XSY + xx * XSX];
                ob[ox] = ({ctype})(s / count);"""
        loops = self._row_loops(ctype, f"{ctype}* ob = o + (nc * OH + oy) * OW;", inside, body)
        return f"""
        {{
        {self._prelude(node, x, ctype, fail)}
        npy_intp dims[4] = {{N, C, OH, OW}};
        if (!({out} && PyArray_IS_C_CONTIGUOUS({out}) && PyArray_DIMS({out})[0] == N
              && PyArray_DIMS({out})[1] == C && PyArray_DIMS({out})[2] == OH
              && PyArray_DIMS({out})[3] == OW)) {{
            Py_XDECREF({out});
            {out} = (PyArrayObject*)PyArray_EMPTY(4, dims, {typenum}, 0);
            if (!{out}) {{ Py_DECREF(src); {fail} }}
        }}
        const {ctype}* in = (const {ctype}*)PyArray_DATA(src);
        {ctype}* o = ({ctype}*)PyArray_DATA({out});
        for (npy_intp q = 0; q < N * C; ++q) {{
            {_PLANE.format(ctype=ctype)}
            {loops}
        }}
        Py_DECREF(src);
        }}
        """


class Pool2DGrad(_Pooling):
    """The gradient of :class:`Pool2D` with respect to its input: ``(x, gz) -> gx``."""

    def make_node(self, x, gz):
        x, gz = _image(x), _image(gz)
        if gz.type.dtype != x.type.dtype:
            raise SymnnTypeError(f"gz must be {x.type.dtype}; got {gz.type}.")
        return Apply(self, [x, gz], [x.type()])

    def perform(self, node, inputs, output_storage):
        x, gz = inputs
        gx = np.zeros_like(x)
        for oy, ox, y0, y1, x0, x1, count in self._windows(x):
            g = gz[:, :, oy, ox]
            if self.mode == "max":
                win = x[:, :, y0:y1, x0:x1].reshape(*x.shape[:2], -1)
                nan = np.isnan(win)  # the last NaN of a window, else its first maximum
                last_nan = win.shape[2] - 1 - np.argmax(nan[:, :, ::-1], axis=2)
                first = np.where(nan.any(axis=2), last_nan, np.argmax(win, axis=2))
                hot = np.arange(win.shape[2]) == first[:, :, None]
                picked = np.where(hot, g[:, :, None], 0)  # no inf * 0 elsewhere
                gx[:, :, y0:y1, x0:x1] += picked.reshape(*x.shape[:2], y1 - y0, -1)
            else:
                gx[:, :, y0:y1, x0:x1] += (g / count)[:, :, None, None]
        output_storage[0][0] = gx

    def infer_shape(self, *args):  # (fgraph, node, shapes) before PyTensor 3.3
        node, shapes = args[-2:]
        return [shapes[0]]

    def pullback(self, inputs, outputs, cotangents):
        x, gz = inputs
        if self.mode == "max":
            return [grad_not_implemented(self, 0, x), grad_not_implemented(self, 1, gz)]
        args = (self.mode, self.pool, self.stride, self.pad, self.ignore_border)
        return [pt.zeros_like(x), Pool2D(*args)(cotangents[0])]

    def _window_code(self, ctype: str, tiles: bool) -> tuple[str, str]:
        """``(inside, border)``: the C code that adds one window's gradient ``g`` to
        ``gplane``, for windows inside the image and at its border (see :meth:`_row_loops`).
        Max pooling's gradient goes to the window's first maximum, or its last NaN. Windows
        that do not overlap (``tiles``) write every pixel (``=``, no zeroing) and find the
        maximum without branches (a branch per pixel on random data mispredicts half the
        time: 5x slower); overlapping windows add once at the window's pick."""
        op = "=" if tiles else "+="
        if self.mode != "max":
            inside = f"""
                const {ctype} share = g * ({ctype})(1.0 / (KH * KW));
                for (npy_intp ky = 0; ky < KH; ++ky)
                    for (npy_intp kx = 0; kx < KW; ++kx)
                        gplane[(ys + ky) * W + xs + kx] {op} share;"""
            body = f"""
                const {ctype} share = ({ctype})(g / count);
                for (npy_intp y = y0; y < y1; ++y)
                    for (npy_intp xx = x0; xx < x1; ++xx) gplane[y * W + xx] += share;"""
            return inside, body
        return self._max_window_code(ctype, tiles, op)

    @staticmethod
    def _max_window_code(ctype: str, tiles: bool, op: str) -> tuple[str, str]:
        """:meth:`_window_code` for max pooling."""
        body = f"""
            npy_intp at = y0 * W + x0;
            {ctype} best = plane[y0 * XSY + x0 * XSX];
            for (npy_intp y = y0; y < y1; ++y)
                for (npy_intp xx = x0; xx < x1; ++xx) {{
                    const {ctype} v = plane[y * XSY + xx * XSX];
                    if (v > best || v != v) {{ best = v; at = y * W + xx; }}
                }}
            gplane[at] += g;"""
        if not tiles:  # add g once at the window's pick, found without branches
            return f"""
                {ctype} best = p[0];
                npy_intp pick_y = 0, pick_x = 0;
                for (npy_intp ky = 0; ky < KH; ++ky)
                    for (npy_intp kx = 0; kx < KW; ++kx) {{
                        const {ctype} v = p[ky * XSY + kx * XSX];
                        const int take = (v > best) | (v != v);  /* first max, last NaN */
                        best = take ? v : best;
                        pick_y = take ? ky : pick_y;
                        pick_x = take ? kx : pick_x;
                    }}
                gplane[(ys + pick_y) * W + xs + pick_x] += g;""", body
        # tiles write every pixel of the window (g at the pick); the pick as a number of the
        # window's own type (an integer one beside float compares kept the compiler from
        # vectorising the loop over windows: 7x slower)
        return f"""
                {ctype} best = p[0], pick = 0;
                for (int ky = 0; ky < (int)KH; ++ky)
                    for (int kx = 0; kx < (int)KW; ++kx) {{
                        const {ctype} v = p[ky * XSY + kx * XSX];
                        const int take = (v > best) | (v != v);  /* first max, last NaN */
                        best = take ? v : best;
                        pick = take ? ({ctype})(ky * (int)KW + kx) : pick;
                    }}
                {ctype}* __restrict__ gw = gplane + ys * W + xs;
                for (int ky = 0; ky < (int)KH; ++ky)
                    for (int kx = 0; kx < (int)KW; ++kx)
                        gw[ky * W + kx] =
                            ({ctype})(ky * (int)KW + kx) == pick ? g : ({ctype})0;""", body

    def c_code(self, node, name, inames, onames, sub):
        """The C code template of the pooling gradient (PyTensor fills in the names)."""
        (x, gz), (out,), fail = inames, onames, sub["fail"]
        ctype, typenum = node.inputs[0].type.dtype_specs()[1], node.outputs[0].type.dtype_specs()[2]
        # windows that do not overlap (stride >= pool) cover the buffer: it is zeroed only
        # where no inside window writes (see _window_code)
        tiles = self.stride[0] >= self.pool[0] and self.stride[1] >= self.pool[1]
        inside, body = self._window_code(ctype, tiles)
        loops = self._row_loops(ctype, f"const {ctype} g = gzp[oy * OW + ox];", inside, body)
        covered = (
            "PH == 0 && PW == 0 && SH == KH && SW == KW && H == OH * KH && W == OW * KW"
            if tiles
            else "0"
        )
        return f"""
        {{
        {self._prelude(node, x, ctype, fail)}
        if (PyArray_DIMS({gz})[0] != N || PyArray_DIMS({gz})[1] != C
            || PyArray_DIMS({gz})[2] != OH || PyArray_DIMS({gz})[3] != OW) {{
            PyErr_SetString(PyExc_ValueError, "pool_2d gradient: gz has the wrong shape.");
            Py_DECREF(src); {fail}
        }}
        PyArrayObject* gsrc = (PyArrayObject*)PyArray_GETCONTIGUOUS({gz});
        if (!gsrc) {{ Py_DECREF(src); {fail} }}
        /* the gradient in the input's memory order: channels first when the input is (a
           convolution writes (C, N, H, W) and the network sees its (N, C, H, W) view), so
           the convolution's weight gradient reads it without a copy */
        const int CF_OUT = CFIRST && XSX == 1 && XSY == W && XS0 == H * W && XS1 == N * H * W;
        const npy_intp GS0 = CF_OUT ? H * W : C * H * W, GS1 = CF_OUT ? N * H * W : H * W;
        if (!({out} && PyArray_NDIM({out}) == 4 && PyArray_ISALIGNED({out})
              && PyArray_DIMS({out})[0] == N && PyArray_DIMS({out})[1] == C
              && PyArray_DIMS({out})[2] == H && PyArray_DIMS({out})[3] == W
              && PyArray_STRIDES({out})[0] == GS0 * esz && PyArray_STRIDES({out})[1] == GS1 * esz
              && PyArray_STRIDES({out})[2] == W * esz && PyArray_STRIDES({out})[3] == esz)) {{
            Py_XDECREF({out});
            if (CF_OUT) {{
                npy_intp cdims[4] = {{C, N, H, W}}, order[4] = {{1, 0, 2, 3}};
                PyArray_Dims perm = {{order, 4}};
                PyArrayObject* base = (PyArrayObject*)PyArray_EMPTY(4, cdims, {typenum}, 0);
                {out} = base ? (PyArrayObject*)PyArray_Transpose(base, &perm) : NULL;
                Py_XDECREF(base);
            }} else {{
                {out} = (PyArrayObject*)PyArray_EMPTY(4, PyArray_DIMS(src), {typenum}, 0);
            }}
            if (!{out}) {{ Py_DECREF(src); Py_DECREF(gsrc); {fail} }}
        }}
        if (!({covered})) memset(PyArray_DATA({out}), 0, PyArray_NBYTES({out}));
        const {ctype}* in = (const {ctype}*)PyArray_DATA(src);
        const {ctype}* gin = (const {ctype}*)PyArray_DATA(gsrc);
        {ctype}* gx = ({ctype}*)PyArray_DATA({out});
        for (npy_intp q = 0; q < N * C; ++q) {{
            {_PLANE.format(ctype=ctype)}
            {ctype}* gplane = gx + (nc / C) * GS0 + (nc % C) * GS1;
            const {ctype}* gzp = gin + nc * OH * OW;
            {loops}
        }}
        Py_DECREF(src);
        Py_DECREF(gsrc);
        }}
        """


def pool_2d(x, pool_size=2, stride=None, pad=0, *, mode="max", ignore_border=True):
    """Pool a batch of images ``(N, C, H, W)``; ``stride`` defaults to ``pool_size``.

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.tensor4("x", dtype="float64")
    >>> pool_2d(x, 2).eval({x: np.arange(16.0).reshape(1, 1, 4, 4)})[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """
    return Pool2D(mode, pool_size, stride, pad, ignore_border)(x)
