"""The input gradient of a convolution, ``col2im(dot(W.T, gz))``, a few images at a time.

A convolution written with :func:`~symnn.ops.conv.im2col` and ``dot`` (see
:mod:`symnn.ops.conv`) has, in its gradient, the product ``dot(W.T, gz)`` of the weights
``(F, C*kh*kw [+ 1])`` and the output's gradient ``(F, N*OH*OW)``: the gradient of the whole
batch's patch matrix (26 MB for the second convolution of Lasagne's MNIST network at batch
128), written by one GEMM and read back by :class:`~symnn.ops.conv.Col2Im`.
:class:`Col2ImGemm` computes the same thing a cache-sized chunk of images at a time: one BLAS
GEMM of a chunk's columns into a buffer, added back into those images while it is in cache.
symnn's C mode puts it in place of ``Col2Im(Dot22(..))`` (:mod:`symnn.ops.rewrites`); the
other backends keep the two ops, whose numba and JAX versions they have.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_type
from pytensor.graph.basic import Apply
from pytensor.graph.utils import MethodNotDefined
from pytensor.tensor.blas import blas_header_text, blas_header_version, ldflags

from ..errors import SymnnTypeError
from .conv import _LOOP, _SHAPE_CHECK, Col2Im, Im2Col, _Geometry, _image, _image_sizes, _zeroed

__all__ = ["Col2ImGemm", "CHUNK_BYTES"]

#: the patch buffer of one chunk of images: half of a Zen 4 / Skylake core's L2 (1 MiB);
#: at least one image per chunk
CHUNK_BYTES = 512 * 1024


_GEMM = {"npy_float32": "sgemm_", "npy_float64": "dgemm_"}

# the patches of a chunk, w[:, :KK].T @ gz[:, chunk], into buf (KK rows of MP): in BLAS's
# column-major terms buf^T (MP x KK) = gz[:, chunk]^T (MP x F, leading dimension NP) times
# w[:, :KK] (F x KK, leading dimension KR)
_CHUNK_PRODUCT = """
            {{
                char ta = 'N', tb = 'T';
                int m_ = (int)MP, n_ = (int)KK, k_ = (int)F;
                int lda = (int)NP, ldb = (int)KR, ldc = (int)MP;
                {ctype} one = 1, zero = 0;
                {gemm}(&ta, &tb, &m_, &n_, &k_, &one, ({ctype}*)PyArray_DATA(gc) + n0 * P, &lda,
                       ({ctype}*)PyArray_DATA(wc), &ldb, &zero, buf, &ldc);
            }}"""


def _check_weights(w, x):
    w = pt.as_tensor_variable(w)
    if w.type.ndim != 2 or w.type.dtype != x.type.dtype:
        raise SymnnTypeError(f"w and gz must be {x.type.dtype} matrices; got {w.type}.")
    return w


class Col2ImGemm(_Geometry):
    """``(weights (F, KR), gz (F, N*OH*OW), like (N, C, H, W)) -> col2im(dot(weights.T, gz))``
    shaped like ``like`` (only its shape is read; the ones row's weight column is not used):
    a convolution's input gradient, one GEMM and one scatter-add per chunk of images."""

    _what = "convolution input gradient"

    def make_node(self, w, gz, like):
        like = _image(like)
        w, gz = _check_weights(w, like), _check_weights(gz, like)
        return Apply(self, [w, gz, like], [like.type()])

    def perform(self, node, inputs, output_storage):
        w, gz, like = inputs
        cols = np.dot(w.T, gz).astype(like.dtype)
        col2im = Col2Im(*self._geometry(), ones_row=self.ones_row)
        col2im.perform(node, [cols, like], output_storage)

    def infer_shape(self, *args):  # (fgraph, node, shapes) before PyTensor 3.3
        node, shapes = args[-2:]
        return [shapes[2]]

    def connection_pattern(self, node):
        return [[True], [True], [False]]

    def pullback(self, inputs, outputs, cotangents):
        w, gz, like = inputs
        (g,) = cotangents  # d<g, col2im(w.T @ gz)>: w -> gz @ im2col(g).T, gz -> w @ im2col(g)
        cols = Im2Col(*self._geometry())(g)
        kk = cols.shape[0]
        gw = pt.dot(gz, cols.T)
        if self.ones_row:  # the bias column does not reach the images
            gw = pt.concatenate([gw, pt.zeros_like(gw[:, :1])], axis=1)
        return [gw, pt.dot(w[:, :kk], cols), disconnected_type()]

    def c_code(self, node, name, inames, onames, sub):
        """C code template: for each chunk, ``patches = w.T @ gz[:, chunk]`` into the buffer,
        added back into the chunk's images."""
        if not self._blas_ok(node):
            raise MethodNotDefined("Col2ImGemm: C code for float32 and float64 only")
        (w_in, gz_in, like), (gx,), fail = inames, onames, sub["fail"]
        ctype, typenum = node.inputs[0].type.dtype_specs()[1], node.outputs[0].type.dtype_specs()[2]
        get, release = self._contiguous({"wc": w_in, "gc": gz_in}, fail)
        body = _CHUNK_PRODUCT.format(ctype=ctype, gemm=_GEMM[ctype]) + self._col2im(ctype, gx)
        return f"""
        {{
        {get}
        const npy_intp F = PyArray_DIMS(wc)[0];
        {self._prelude(node, like, "wc", release + fail)}
        if (PyArray_DIMS(gc)[0] != F || PyArray_DIMS(gc)[1] != NP) {{
            PyErr_Format(PyExc_ValueError, "{self._what}: gradient of shape (%ld, %ld); expected "
                         "(%ld, %ld).", (long)PyArray_DIMS(gc)[0], (long)PyArray_DIMS(gc)[1],
                         (long)F, (long)NP);
            free(buf); {release} {fail}
        }}
        {_zeroed(gx, f"PyArray_DIMS({like})", typenum, "free(buf); " + release + fail)}
        if (F > 0) {{ {self._chunks(body)} }}
        free(buf);
        {release}
        }}
        """

    def c_headers(self, **kwargs):
        return ["<string.h>", "<stdlib.h>", "<limits.h>"]

    def c_libraries(self, **kwargs):
        return ldflags()

    def c_compile_args(self, **kwargs):
        return ldflags(libs=False, flags=True)

    def c_lib_dirs(self, **kwargs):
        return ldflags(libs=False, libs_dir=True)

    def c_header_dirs(self, **kwargs):
        return ldflags(libs=False, include_dir=True)

    def c_support_code(self, **kwargs):
        return blas_header_text()

    def c_code_cache_version(self):
        return (3, CHUNK_BYTES, blas_header_version())

    def _prelude(self, node, image: str, weights: str, fail: str) -> str:
        """C code: the sizes of the images (``N``, ``C``, ``H``, ``W``, ``OH``, ``OW``, ``P``
        positions per image, ``NP``, ``KK`` patch rows without the ones row, ``KR`` with it),
        the chunk ``NC`` and its buffer ``buf``; the matrix ``weights`` is checked to have
        ``KR`` columns. ``fail`` runs on an error before the buffer exists."""
        ctype = node.inputs[0].type.dtype_specs()[1]
        check = f"""
        if (PyArray_NDIM({weights}) != 2 || PyArray_DIMS({weights})[1] != KR) {{
            PyErr_Format(PyExc_ValueError, "{self._what}: weights of shape (%ld, %ld); "
                         "expected %ld columns (channels x kernel%s).",
                         (long)PyArray_DIMS({weights})[0], (long)PyArray_DIMS({weights})[1],
                         (long)KR, {int(self.ones_row)} ? " + bias" : "");
            {fail}
        }}"""
        return f"""
        {self._defines()}
        {_image_sizes(image, node.inputs[2], self._what, fail)}
        const npy_intp OH = (H + 2 * PH - DH * (KH - 1) - 1) / SH + 1;
        const npy_intp OW = (W + 2 * PW - DW * (KW - 1) - 1) / SW + 1;
        {_SHAPE_CHECK.format(what=self._what, fail=fail)}
        const npy_intp P = OH * OW, NP = N * P, KK = C * KH * KW, KR = KK + {int(self.ones_row)};
        {check}
        if (NP > INT_MAX || KR > INT_MAX) {{
            PyErr_SetString(PyExc_ValueError, "{self._what}: more than 2**31 - 1 positions.");
            {fail}
        }}
        npy_intp NC = {CHUNK_BYTES} / ((npy_intp)sizeof({ctype}) * KR * (P > 0 ? P : 1));
        if (NC < 1) NC = 1;
        if (NC > N) NC = N;
        {ctype}* buf = NULL;
        if (N > 0) {{
            buf = ({ctype}*)malloc(sizeof({ctype}) * KR * NC * P + 1);
            if (!buf) {{ PyErr_NoMemory(); {fail} }}
        }}"""

    @staticmethod
    def _chunks(body: str) -> str:
        """C code: ``body`` for each chunk of images ``[n0, n0 + M)``, ``MP = M * P`` columns."""
        return f"""
        for (npy_intp n0 = 0; n0 < N; n0 += NC) {{
            const npy_intp M = N - n0 < NC ? N - n0 : NC, MP = M * P;
            {body}
        }}"""

    def _col2im(self, ctype: str, images: str) -> str:
        """C code: the patches in ``buf`` added back into images ``[n0, n0 + M)``."""
        loop = _LOOP.format(
            ctype=ctype, edge_row="", edge_lo="", edge_hi="",
            pixel_op_1="line[ox] += dst[ox];", pixel_op="line[ox * SW] += dst[ox];",
        )  # fmt: skip
        return self._scoped(ctype, images, loop)

    @staticmethod
    def _scoped(ctype: str, images: str, loop: str) -> str:
        # the loop of symnn.ops.conv reads N, NP, img and cols: the chunk's
        return f"""
            {{
                const npy_intp N = M, NP = MP;
                {ctype}* img = ({ctype}*)PyArray_DATA({images}) + n0 * C * H * W;
                {ctype}* cols = buf;
                {loop}
            }}"""

    def _blas_ok(self, node) -> bool:
        return all(v.type.dtype in ("float32", "float64") for v in node.inputs)

    def _contiguous(self, names: dict[str, str], fail: str) -> tuple[str, str]:
        """C code: C-contiguous copies (or new references) of the inputs in ``names`` (local
        name -> PyTensor's name), and the code that releases them."""
        get, release = [], []
        for local, given in names.items():
            get.append(
                f"PyArrayObject* {local} = (PyArrayObject*)PyArray_GETCONTIGUOUS({given});"
                f"if (!{local}) {{ {' '.join(release)} {fail} }}"
            )
            release.append(f"Py_DECREF({local});")
        return "\n".join(get), " ".join(release)
