"""Elementwise nodes with a flat, vectorisable C loop for contiguous operands.

PyTensor's C code for an ``Elemwise`` node loops over the dimensions with a stride per
operand; the compiler turns that loop into SIMD code for a few operands but not for the
fused update of an optimiser (Adam fuses the weight, both moments, the gradient and the step
size: eight operands), whose loop then runs several times slower than numpy's separate passes.
:class:`FlatElemwise` is the same node with one more path, taken at run time when every
operand that is not a broadcast scalar is C-contiguous and as large as the output: a single
loop over ``PyArray_SIZE`` with ``#pragma GCC ivdep`` (in-place outputs alias their input
at the same index only). Otherwise it runs PyTensor's loop. The values are the same: the
scalar code is PyTensor's own.
"""

from __future__ import annotations

from pytensor.tensor.elemwise import Elemwise

__all__ = ["FlatElemwise", "FlatElemwise32", "flat_elemwise_for", "wants_flat_loop"]

#: operands (inputs and outputs) from which PyTensor's strided loop stops vectorising
MIN_OPERANDS = 4


def _is_scalar(var) -> bool:
    return all(s == 1 for s in var.type.shape)


def wants_flat_loop(node) -> bool:
    """A C-able elementwise node of arrays with enough operands to profit."""
    out = node.outputs[0]
    return (
        type(node.op) is Elemwise
        and out.type.ndim >= 1
        and not _is_scalar(out)
        and len(node.inputs) + len(node.outputs) >= MIN_OPERANDS
        and all(v.type.dtype != "float16" for v in node.inputs + node.outputs)
    )


class FlatElemwise(Elemwise):
    """:class:`~pytensor.tensor.elemwise.Elemwise` with a flat loop for contiguous operands
    (see the module docstring). The loop is a separate function marked hot: inline, the
    compiler can judge the branch cold and leave the loop scalar."""

    def _operands(self, node):
        """``[(kind, position, ctype)]``: ``"in"`` arrays and ``"scalar"`` inputs (unique),
        then the ``"out"`` arrays that are not in place; and the aliased outputs'
        ``{output position: input position}``."""
        aliased = dict(self.inplace_pattern)
        operands, seen = [], set()
        for i, var in enumerate(node.inputs):
            if var in seen:
                continue
            seen.add(var)
            kind = "scalar" if _is_scalar(var) else "in"
            operands.append((kind, i, var.type.dtype_specs()[1]))
        for o, var in enumerate(node.outputs):
            if o not in aliased:
                operands.append(("out", o, var.type.dtype_specs()[1]))
        return operands, aliased

    def _function_name(self, nodename: str) -> str:
        return f"symnn_flat_{nodename}"

    def c_support_code_apply(self, node, nodename):
        base = super().c_support_code_apply(node, nodename)
        operands, aliased = self._operands(node)
        first = {var: i for i, var in reversed(list(enumerate(node.inputs)))}
        in_names = [f"in{first[var]}" for var in node.inputs]
        out_names = [
            f"in{first[node.inputs[aliased[o]]]}" if o in aliased else f"out{o}"
            for o in range(len(node.outputs))
        ]
        task = self.scalar_op.c_code(
            node.tag.fake_node,
            nodename + "_scalar_",
            [f"{n}_i" for n in in_names],
            [f"{n}_i" for n in out_names],
            {"fail": "return 1;"},
        )
        params, refs = [], []
        for kind, pos, ctype in operands:
            name = f"{'out' if kind == 'out' else 'in'}{pos}"
            if kind == "scalar":
                params.append(f"const {ctype} {name}_i")
            else:
                params.append(f"{ctype}* {name}_flat")
                refs.append(f"{ctype}& {name}_i = {name}_flat[flat_i];")
        fn = self._function_name(nodename)
        nl = "\n"
        return f"""{base}
static int {fn}(npy_intp flat_n, {", ".join(params)}) __attribute__((hot, noinline));
static int {fn}(npy_intp flat_n, {", ".join(params)}) {{
    #pragma GCC ivdep
    for (npy_intp flat_i = 0; flat_i < flat_n; ++flat_i) {{
        {nl.join(refs)}
        {task}
    }}
    return 0;
}}
"""

    def _c_all(self, node, nodename, inames, onames, sub):
        decl, checks, alloc, loop, extra = super()._c_all(node, nodename, inames, onames, sub)
        operands, _ = self._operands(node)
        arrays, args = [], []
        for kind, pos, ctype in operands:
            name = onames[pos] if kind == "out" else inames[pos]
            if kind == "scalar":
                args.append(f"(({ctype}*) PyArray_DATA({name}))[0]")
            else:
                arrays.append(name)
                args.append(f"({ctype}*) PyArray_DATA({name})")
        size = f"PyArray_SIZE({onames[0]})"
        condition = " && ".join(
            f"PyArray_IS_C_CONTIGUOUS({a}) && PyArray_SIZE({a}) == {size}" for a in arrays
        )
        call = f"{self._function_name(nodename)}({size}, {', '.join(args)})"
        loop = f"""{{
        const int flat_ok = ({condition or "0"});
        if (flat_ok) {{
            if ({call}) {{ {sub["fail"]} }}
        }} else {{
            {loop}
        }}
        }}"""
        return decl, checks, alloc, loop, extra

    def c_compile_args(self, **kwargs):
        # sqrt and friends may then become SIMD instructions (symnn never reads errno)
        return [*super().c_compile_args(**kwargs), "-fno-math-errno"]

    def c_code_cache_version_apply(self, node):
        return (*super().c_code_cache_version_apply(node), ("symnn_flat", 7))


class FlatElemwise32(FlatElemwise):
    """:class:`FlatElemwise` of float32 operands only: the scalar code's constants are single
    precision (PyTensor writes them as double literals, which turns every float32 operation
    of the loop into a double one), as they are in the graph."""

    def c_compile_args(self, **kwargs):
        return [*super().c_compile_args(**kwargs), "-fsingle-precision-constant"]


def flat_elemwise_for(node) -> FlatElemwise:
    """The flat-loop op for an elementwise ``node`` (see :func:`wants_flat_loop`)."""
    op = node.op
    single = all(v.type.dtype == "float32" for v in node.inputs + node.outputs)
    cls = FlatElemwise32 if single else FlatElemwise
    return cls(op.scalar_op, op.inplace_pattern, name=op.name, nfunc_spec=op.nfunc_spec)
