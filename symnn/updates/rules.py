"""Update rules: pure functions returning ``dict[shared, new expression]``.

Signatures, parameter names and defaults follow Lasagne. Optimiser state (velocities,
moment estimates, step counters) lives in new shared variables in the same dict, and every
expression keeps the parameter's dtype (float32 stays float32). ``learning_rate`` may be a
number or a shared variable (so schedules can change it between calls).

>>> import numpy as np, pytensor
>>> w = pytensor.shared(np.array([1.0, 2.0], dtype="float32"), name="w")
>>> step = pytensor.function([], [], updates=sgd((w ** 2).sum(), [w], 0.1), mode="FAST_COMPILE")
>>> _ = step(); w.get_value()
array([0.8, 1.6], dtype=float32)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable

from ..errors import SymnnTypeError, SymnnValueError
from ..utils import check_positive, describe

__all__ = [
    "get_or_compute_grads",
    "sgd",
    "apply_momentum",
    "momentum",
    "apply_nesterov_momentum",
    "nesterov_momentum",
    "adagrad",
    "rmsprop",
    "adadelta",
    "adam",
    "adamax",
    "RULES",
]

Updates = "OrderedDict[SharedVariable, pt.TensorVariable]"


def get_or_compute_grads(loss_or_grads, params: Sequence) -> list:
    """Gradients of ``loss_or_grads`` (a scalar) w.r.t. ``params``, or the given list."""
    params = list(params)
    if not params:
        raise SymnnValueError("params is empty; expected the shared variables to update.")
    for p in params:
        if not isinstance(p, SharedVariable):
            raise SymnnTypeError(
                f"params must contain shared variables only; got {describe(p)}. To optimise "
                "with respect to an input, make it a pytensor.shared variable."
            )
    if isinstance(loss_or_grads, list | tuple):
        if len(loss_or_grads) != len(params):
            raise SymnnValueError(
                f"got {len(loss_or_grads)} gradients for {len(params)} parameters; expected equal."
            )
        return list(loss_or_grads)
    loss = pt.as_tensor_variable(loss_or_grads)
    if loss.type.ndim != 0:
        raise SymnnValueError(
            f"loss must be a scalar expression; got {loss.type}. Reduce it with "
            "symnn.costs.aggregate(...)."
        )
    return pytensor.grad(loss, params)


def _lr(learning_rate, dtype: str, name: str = "learning_rate"):
    """A learning rate (number or shared variable) as an expression of ``dtype``."""
    if isinstance(learning_rate, pt.Variable):
        return learning_rate if learning_rate.dtype == dtype else pt.cast(learning_rate, dtype)
    try:
        value = float(learning_rate)
    except (TypeError, ValueError):
        raise SymnnTypeError(
            f"{name} must be a number or a shared variable; got {describe(learning_rate)}."
        ) from None
    check_positive(value, name)
    return pt.constant(np.asarray(value, dtype=dtype))


def _const(value, dtype: str):
    return pt.constant(np.asarray(value, dtype=dtype))


def _check_unit(value, name: str, *, closed_low: bool = True) -> float:
    value = float(value)
    ok = (0.0 <= value < 1.0) if closed_low else (0.0 < value < 1.0)
    if not ok:
        raise SymnnValueError(
            f"{name}={value} is not valid; expected {'0 <=' if closed_low else '0 <'} {name} < 1."
        )
    return value


def _state(param, name: str, fill: float = 0.0) -> SharedVariable:
    value = param.get_value(borrow=True)
    return pytensor.shared(
        np.full(value.shape, fill, dtype=value.dtype), name=f"{param.name or 'param'}.{name}"
    )


def sgd(loss_or_grads, params, learning_rate) -> OrderedDict:
    """Stochastic gradient descent: ``param - learning_rate * grad``."""
    grads = get_or_compute_grads(loss_or_grads, params)
    updates = OrderedDict()
    for param, grad in zip(params, grads):
        updates[param] = param - _lr(learning_rate, param.dtype) * grad
    return updates


def apply_momentum(updates, params=None, momentum: float = 0.9) -> OrderedDict:
    """Add classical momentum to an update dict: ``v = momentum * v + (update - param)``,
    ``param = param + v``. Returns a copy."""
    mu = _check_unit(momentum, "momentum")
    params = list(updates.keys()) if params is None else list(params)
    updates = OrderedDict(updates)
    for param in params:
        velocity = _state(param, "velocity")
        x = _const(mu, param.dtype) * velocity + updates[param]
        updates[velocity] = x - param
        updates[param] = x
    return updates


def momentum(loss_or_grads, params, learning_rate, momentum: float = 0.9) -> OrderedDict:
    """SGD with classical momentum."""
    return apply_momentum(sgd(loss_or_grads, params, learning_rate), params, momentum)


def apply_nesterov_momentum(updates, params=None, momentum: float = 0.9) -> OrderedDict:
    """Add Nesterov momentum (Lasagne's formulation) to an update dict. Returns a copy."""
    mu = _check_unit(momentum, "momentum")
    params = list(updates.keys()) if params is None else list(params)
    updates = OrderedDict(updates)
    for param in params:
        velocity = _state(param, "velocity")
        m = _const(mu, param.dtype)
        x = m * velocity + updates[param] - param
        updates[velocity] = x
        updates[param] = m * x + updates[param]
    return updates


def nesterov_momentum(loss_or_grads, params, learning_rate, momentum: float = 0.9) -> OrderedDict:
    """SGD with Nesterov momentum."""
    return apply_nesterov_momentum(sgd(loss_or_grads, params, learning_rate), params, momentum)


def adagrad(loss_or_grads, params, learning_rate=1.0, epsilon: float = 1e-6) -> OrderedDict:
    """Adagrad: ``param - lr * g / sqrt(sum of g**2 + epsilon)``."""
    grads = get_or_compute_grads(loss_or_grads, params)
    updates = OrderedDict()
    for param, grad in zip(params, grads):
        accu = _state(param, "accu")
        accu_new = accu + grad**2
        updates[accu] = accu_new
        updates[param] = param - _lr(learning_rate, param.dtype) * grad / pt.sqrt(
            accu_new + _const(epsilon, param.dtype)
        )
    return updates


def rmsprop(
    loss_or_grads, params, learning_rate=1.0, rho: float = 0.9, epsilon: float = 1e-6
) -> OrderedDict:
    """RMSprop: divide the gradient by a running RMS of recent gradients.

    The step is scaled by ``learning_rate`` (Tieleman & Hinton's rule; without it the
    step size cannot be chosen): ``acc = rho * acc + (1 - rho) * g**2``,
    ``param -= lr * g / sqrt(acc + epsilon)``.
    """
    rho = _check_unit(rho, "rho")
    grads = get_or_compute_grads(loss_or_grads, params)
    updates = OrderedDict()
    for param, grad in zip(params, grads):
        accu = _state(param, "accu")
        r = _const(rho, param.dtype)
        accu_new = r * accu + (_const(1.0, param.dtype) - r) * grad**2
        updates[accu] = accu_new
        updates[param] = param - _lr(learning_rate, param.dtype) * grad / pt.sqrt(
            accu_new + _const(epsilon, param.dtype)
        )
    return updates


def adadelta(
    loss_or_grads, params, learning_rate=1.0, rho: float = 0.95, epsilon: float = 1e-6
) -> OrderedDict:
    """Adadelta (Zeiler, 2012)."""
    rho = _check_unit(rho, "rho")
    grads = get_or_compute_grads(loss_or_grads, params)
    updates = OrderedDict()
    for param, grad in zip(params, grads):
        accu = _state(param, "accu")
        delta_accu = _state(param, "delta_accu")
        r, one, eps = (_const(v, param.dtype) for v in (rho, 1.0, epsilon))
        accu_new = r * accu + (one - r) * grad**2
        update = grad * pt.sqrt(delta_accu + eps) / pt.sqrt(accu_new + eps)
        updates[accu] = accu_new
        updates[param] = param - _lr(learning_rate, param.dtype) * update
        updates[delta_accu] = r * delta_accu + (one - r) * update**2
    return updates


def _step_counter(params) -> SharedVariable:
    dtype = params[0].get_value(borrow=True).dtype
    return pytensor.shared(np.asarray(0.0, dtype=dtype), name="t")


def adam(
    loss_or_grads,
    params,
    learning_rate=0.001,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
) -> OrderedDict:
    """Adam (Kingma & Ba, 2014), with Lasagne's bias-corrected step size."""
    beta1, beta2 = _check_unit(beta1, "beta1"), _check_unit(beta2, "beta2")
    grads = get_or_compute_grads(loss_or_grads, params)
    updates = OrderedDict()
    t_prev = _step_counter(params)
    one = _const(1.0, t_prev.dtype)
    t = t_prev + one
    b1, b2 = _const(beta1, t_prev.dtype), _const(beta2, t_prev.dtype)
    a_t = pt.sqrt(one - b2**t) / (one - b1**t)
    for param, grad in zip(params, grads):
        m_prev, v_prev = _state(param, "m"), _state(param, "v")
        d = param.dtype
        m_t = _const(beta1, d) * m_prev + _const(1 - beta1, d) * grad
        v_t = _const(beta2, d) * v_prev + _const(1 - beta2, d) * grad**2
        step = _lr(learning_rate, d) * pt.cast(a_t, d) * m_t / (pt.sqrt(v_t) + _const(epsilon, d))
        updates[m_prev] = m_t
        updates[v_prev] = v_t
        updates[param] = param - step
    updates[t_prev] = t
    return updates


def adamax(
    loss_or_grads,
    params,
    learning_rate=0.002,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
) -> OrderedDict:
    """Adamax: Adam with the infinity norm (Kingma & Ba, 2014, section 7)."""
    beta1, beta2 = _check_unit(beta1, "beta1"), _check_unit(beta2, "beta2")
    grads = get_or_compute_grads(loss_or_grads, params)
    updates = OrderedDict()
    t_prev = _step_counter(params)
    one = _const(1.0, t_prev.dtype)
    t = t_prev + one
    a_t_base = one - _const(beta1, t_prev.dtype) ** t
    for param, grad in zip(params, grads):
        m_prev, u_prev = _state(param, "m"), _state(param, "u")
        d = param.dtype
        m_t = _const(beta1, d) * m_prev + _const(1 - beta1, d) * grad
        u_t = pt.maximum(_const(beta2, d) * u_prev, pt.abs(grad))
        step = _lr(learning_rate, d) / pt.cast(a_t_base, d) * m_t / (u_t + _const(epsilon, d))
        updates[m_prev] = m_t
        updates[u_prev] = u_t
        updates[param] = param - step
    updates[t_prev] = t
    return updates


#: The rules by name, for estimators and the command line.
RULES: dict[str, Any] = {
    "sgd": sgd,
    "momentum": momentum,
    "nesterov_momentum": nesterov_momentum,
    "nesterov": nesterov_momentum,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adadelta": adadelta,
    "adam": adam,
    "adamax": adamax,
}
