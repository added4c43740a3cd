"""One compiled training step: cost, metrics and every update in a single function.

The training data live in shared variables on the compiled side; each call passes only the
indices of its minibatch (the Theano tutorials' ``givens`` pattern, with an index vector so
that any shuffle costs nothing to set up).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable

try:  # PyTensor >= 3.3
    from pytensor.conditional.op import ifelse
except ImportError:  # PyTensor < 3.3
    from pytensor.ifelse import ifelse

from ..backend import function, mode_name
from ..errors import SymnnTypeError, SymnnValueError
from ..ops.gather import NonFiniteRowError, take_rows
from ..utils import describe

__all__ = ["TrainStep", "compile_train_step", "guard_updates"]


def guard_updates(loss, updates: Mapping) -> tuple[dict, Any]:
    """Make ``updates`` apply only when the step is finite.

    Returns new updates in which every shared variable keeps its value unless the loss and
    every new value are finite, and the symbolic flag ``ok``. A step that would write NaN or
    infinity into the parameters or the optimiser state is skipped on the compiled side, so
    the weights after a non-finite loss are those of the last finite step.
    """
    keys = [k for k in updates if isinstance(k.type, pt.TensorType)]
    others = {k: v for k, v in updates.items() if k not in keys}  # RNG states pass through
    news = [pt.as_tensor_variable(updates[k]) for k in keys]
    total = pt.cast(loss, "float64")
    for v in news:
        if v.dtype.startswith("float"):
            total = total + pt.cast(pt.sum(v), "float64")
    ok = pt.isfinite(total)
    guarded = ifelse(ok, news, list(keys))
    if not isinstance(guarded, list | tuple):
        guarded = [guarded]
    return {**dict(zip(keys, guarded)), **others}, ok


@dataclass
class TrainStep:
    """A compiled training step over data held in shared variables.

    Call it with an ``int64`` index vector (the minibatch); it returns the outputs as
    floats (``names`` says which) after applying every update once.
    """

    fn: Any
    storage: list[SharedVariable]
    names: list[str]
    guarded: bool
    n_samples: int = 0
    _dtypes: list[str] = field(default_factory=list)
    #: the step is an XLA program (the JAX backend): it cannot raise, so ``set_data`` finds
    #: the rows holding NaN or infinity and a call whose minibatch holds one raises as the C
    #: and numba gathers do; and the data are held as JAX arrays
    xla: bool = False
    _bad_rows: np.ndarray | None = None

    def set_data(self, *arrays: np.ndarray) -> None:
        """Put the training arrays on the compiled side (no recompile for new data)."""
        if len(arrays) != len(self.storage):
            raise SymnnValueError(
                f"set_data got {len(arrays)} arrays; expected {len(self.storage)}."
            )
        n = {len(a) for a in arrays}
        if len(n) != 1:
            raise SymnnValueError(f"set_data arrays have different lengths {sorted(n)}.")
        bad = []
        for s, a, d in zip(self.storage, arrays, self._dtypes):
            s.set_value(np.ascontiguousarray(a, dtype=d), borrow=True)
            if self.xla and np.dtype(d).kind == "f":
                flat = s.get_value(borrow=True).reshape(len(a), -1)
                bad.append(np.flatnonzero(~np.isfinite(flat).all(axis=1)))
            if self.xla:
                _on_device(s)
        self._bad_rows = np.unique(np.concatenate(bad)) if bad else None
        self.n_samples = n.pop()

    def __call__(self, indices: np.ndarray) -> list[float]:
        if self._bad_rows is not None and len(self._bad_rows):
            rows = np.asarray(indices) % max(self.n_samples, 1)
            hit = np.isin(rows, self._bad_rows)
            if hit.any():
                raise NonFiniteRowError(int(rows[np.argmax(hit)]))
        return self.fn(indices)

    def copy_with(self, swap: Mapping[SharedVariable, SharedVariable]) -> TrainStep | None:
        """The same compiled step over other shared variables (``swap``: this step's
        variables -> the new ones; data storage gets fresh variables of its own), sharing
        the compiled code: no graph rewriting, no compiling. None when ``swap`` does not
        cover every shared variable the step reads or updates (so no variable can end up
        shared between the two steps)."""
        storage = [
            pytensor.shared(
                np.zeros((0, *s.get_value(borrow=True).shape[1:]), dtype=s.dtype),
                name=s.name,
                shape=s.type.shape,
            )
            for s in self.storage
        ]
        mapping = {**dict(swap), **dict(zip(self.storage, storage))}
        used = {i.variable for i in self.fn.maker.inputs if isinstance(i.variable, SharedVariable)}
        if not used <= set(mapping) or any(not mapping[v].type.in_same_class(v.type) for v in used):
            return None
        fn = self.fn.copy(swap={v: mapping[v] for v in used})
        fn.trust_input = True
        names, dtypes = list(self.names), list(self._dtypes)
        return TrainStep(fn, storage, names, self.guarded, 0, dtypes, self.xla)


def _on_device(storage: SharedVariable) -> None:
    """Hold ``storage``'s value as a JAX array (on the default device), as PyTensor's JAX
    linker holds the variables it updates: a numpy array would be copied to the device on
    every call (all the training data, for one minibatch)."""
    import jax

    storage.container.storage[0] = jax.device_put(storage.get_value(borrow=True))


def compile_train_step(
    loss,
    updates: Mapping,
    *,
    inputs: Sequence,
    outputs: Mapping[str, Any] | None = None,
    data: Sequence[np.ndarray] | None = None,
    guard: bool = False,
    mode: Any = None,
) -> TrainStep:
    """Compile ONE function that computes ``loss`` (and ``outputs``) on a minibatch and
    applies ``updates`` (parameters, optimiser state, layer statistics).

    Parameters
    ----------
    loss
        Scalar symbolic loss, built from the symbolic ``inputs``.
    updates
        ``shared -> expression``, e.g. ``symnn.updates.adam(loss, params)`` merged with
        ``symnn.layers.get_updates(loss)``.
    inputs
        The symbolic inputs (``x``, ``y``, ...) that the data replace; each gets shared storage.
    outputs
        Extra scalar outputs by name (``{"accuracy": ...}``).
    data
        Arrays to put on the compiled side now (``TrainStep.set_data`` changes them later).
        Each call gathers its rows with :func:`symnn.ops.take_rows`, which raises
        :class:`~symnn.ops.gather.NonFiniteRowError` (a ``ValueError`` with ``.row``) for a
        float row that does.
    guard
        Skip, on the compiled side, any update that is not finite (see
        :func:`guard_updates`). It keeps a copy of every updated variable on every call (a
        large share of a small step, see ``docs/performance.md``), so
        :class:`~symnn.train.Trainer` guards by snapshot and replay instead.
    mode
        Compile mode (default: symnn's).

    Examples
    --------
    >>> import numpy as np, pytensor, pytensor.tensor as pt
    >>> from symnn import updates
    >>> x = pt.vector("x", dtype="float32")
    >>> w = pytensor.shared(np.float32(0.0), name="w")
    >>> loss = pt.mean((x - w) ** 2)
    >>> step = compile_train_step(loss, updates.sgd(loss, [w], 0.5), inputs=[x],
    ...                           data=[np.full(4, 2.0, dtype="float32")], mode="FAST_COMPILE")
    >>> [float(v) for v in step(np.arange(4))], float(w.get_value())
    ([4.0], 2.0)
    """
    loss = pt.as_tensor_variable(loss)
    if loss.type.ndim != 0:
        raise SymnnValueError(f"loss must be a scalar; got {loss.type}.")
    inputs = list(inputs)
    for v in inputs:
        if not isinstance(v, pt.TensorVariable) or v.owner is not None:
            raise SymnnTypeError(f"inputs must be symbolic input variables; got {describe(v)}.")
    for k in updates:
        if not isinstance(k, SharedVariable):
            raise SymnnTypeError(f"updates keys must be shared variables; got {describe(k)}.")
    outputs = dict(outputs or {})
    index = pt.lvector("minibatch_indices")
    storage = [
        pytensor.shared(
            np.zeros((0, *(d or 0 for d in v.type.shape[1:])), dtype=v.type.dtype),
            name=f"{v.name or 'data'}_storage",
            # the static shape of a row, so that the minibatch keeps the input's type; with
            # (None, None) the gradient of the first layer gets a SpecifyShape that stops its
            # update from becoming one in-place GEMM
            shape=(None, *v.type.shape[1:]),
        )
        for v in inputs
    ]
    # the gather checks float rows for NaN and infinity as it copies them (symnn.ops.gather)
    givens = {v: take_rows(s, index, check_finite=True) for v, s in zip(inputs, storage)}
    ups = dict(updates)
    if guard:
        ups, _ = guard_updates(loss, ups)
    names = ["loss", *outputs]
    outs = [loss, *(pt.as_tensor_variable(o) for o in outputs.values())]
    fn = function([index], outs, updates=ups, givens=givens, mode=mode, on_unused_input="ignore")
    fn.trust_input = True
    dtypes = [v.type.dtype for v in inputs]
    step = TrainStep(fn, storage, names, guard, 0, dtypes, mode_name(mode) == "JAX")
    if data is not None:
        step.set_data(*data)
    return step
