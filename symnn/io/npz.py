"""Saving and loading networks and training runs: one file, no pickle, atomic writes.

The file is a ``.npz`` archive (a zip of ``.npy`` arrays): a JSON header (architecture,
training settings, counters, random-generator states and history) stored as UTF-8 bytes,
plus one plain numeric array per parameter and optimiser state. Loading reads it with
``numpy.load(..., allow_pickle=False)``, so nothing in a file is ever executed; files with a
pickle payload, a truncated archive, another format version or arrays that do not fit the
architecture are refused with a clear error. Writes go to a temporary file in the same
folder, are flushed to disk (fsync) and renamed over the target, so a save killed midway
leaves the previous file intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..costs import LOSSES
from ..errors import SymnnError, SymnnTypeError, SymnnValueError
from ..layers import Layer, layer_from_spec, layer_to_spec
from ..train import BaseTrainer, ScipyTrainer, Trainer
from ..updates import RULES
from ..utils import describe

__all__ = ["save", "load", "FORMAT", "VERSION"]

FORMAT = "symnn"
VERSION = 2  # 2: a trainer is stored as {class, config, progress}

#: The trainer classes a file can hold, by name.
TRAINERS = {"Trainer": Trainer, "ScipyTrainer": ScipyTrainer}
_HEADER = "__symnn__"


def _rng_states(layer: Layer) -> list[dict]:
    return [r.get_value(borrow=True).bit_generator.state for r in layer.get_rngs()]


def _set_rng_states(layer: Layer, states: list[dict]) -> None:
    rngs = layer.get_rngs()
    if len(states) != len(rngs):
        raise SymnnValueError(
            f"the file has {len(states)} random-generator states; the network has {len(rngs)}."
        )
    for r, state in zip(rngs, states):
        gen = np.random.default_rng()
        gen.bit_generator.state = state
        r.set_value(gen)


def _network_part(network: Layer, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    params = network.get_params()
    for i, p in enumerate(params):
        arrays[f"param_{i}"] = np.array(p.get_value(), order="C")
    return {
        "architecture": layer_to_spec(network),
        "params": [str(p.name) for p in params],
        "rng_states": _rng_states(network),
    }


def _trainer_part(trainer: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    config = trainer.get_config()
    for name, table in (("loss", LOSSES), ("optimizer", RULES)):
        values = config.get(name)
        for value in values if isinstance(values, list) else [values]:
            if name in config and value not in table:
                raise SymnnValueError(
                    f"the trainer's {name} {value!r} is a custom function, which a "
                    f"file cannot describe; use one of {', '.join(table)}."
                )
    if config["mode"] is not None and not isinstance(config["mode"], str):
        raise SymnnValueError(
            f"the trainer's mode {config['mode']!r} is a Mode object, which a file cannot "
            'describe; pass mode as a name ("C", "NUMBA", "FAST_COMPILE") to save it.'
        )
    for i, var in enumerate(trainer.optimizer_state):
        arrays[f"opt_{i}"] = np.array(var.get_value(), order="C")
    return {
        "class": type(trainer).__name__,
        "config": _plain(config, "the trainer's settings"),
        "progress": trainer.get_progress(),
        "n_optimizer_state": len(trainer.optimizer_state),
    }


def _plain(value: dict, what: str) -> dict:
    """``value`` as it reads back from JSON, or an error naming ``what``."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        raise SymnnValueError(
            f"{what} must be plain numbers, strings or lists to be saved; got {value!r}."
        ) from None


def save(obj: Layer | BaseTrainer, path: str | os.PathLike) -> Path:
    """Save a network (any symnn layer) or a training run (a ``Trainer``) to ``path``.

    A ``Trainer`` is saved with its optimiser state, counters, shuffling generator and
    history, so that training resumed from the file continues exactly as if never stopped.
    Returns the path written (``.npz`` is added when missing).

    >>> import tempfile, os
    >>> from symnn.layers import mlp
    >>> net = mlp([4, 3, 2], rng=0)
    >>> path = save(net, os.path.join(tempfile.mkdtemp(), "net"))
    >>> path.name, [v.shape for v in load(path).get_values()]
    ('net.npz', [(4, 3), (3,), (3, 2), (2,)])
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays: dict[str, np.ndarray] = {}
    if isinstance(obj, BaseTrainer):
        header = {
            "kind": "trainer",
            **_network_part(obj.network, arrays),
            "trainer": _trainer_part(obj, arrays),
        }
    elif isinstance(obj, Layer):
        header = {"kind": "network", **_network_part(obj, arrays)}
    else:
        raise SymnnTypeError(f"obj must be a symnn network or Trainer; got {describe(obj)}.")
    header = {"format": FORMAT, "version": VERSION, **header}
    arrays[_HEADER] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    _check_target(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise SymnnValueError(f"path={str(path)!r} cannot be written: {exc.strerror}.") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fchmod(fh.fileno(), 0o666 & ~_umask())  # as open() would create it
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise SymnnValueError(f"path={str(path)!r} cannot be written: {exc.strerror}.") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover - some filesystems refuse directory fsync
        pass
    return path


_V1_PROGRESS = ("n_updates", "n_epochs", "rng_state", "history", "targets_kind")


def _from_version_1(t: dict[str, Any]) -> dict[str, Any]:
    """A trainer header of format version 1 (settings and counters side by side) in the
    form of version 2."""
    progress = {k: t.get(k) for k in _V1_PROGRESS}
    if t.get("scipy_method"):
        keys = ("loss", "l1", "l2", "mode", "blas_threads")
        config = {k: t[k] for k in keys if k in t}
        config.update(method=t["scipy_method"], options=t.get("scipy_options") or {})
        return {"class": "ScipyTrainer", "config": config, "progress": progress,
                "n_optimizer_state": 0}  # fmt: skip
    keys = ("loss", "optimizer", "learning_rate", "l1", "l2", "max_norm", "guard",
            "optimizer_kwargs", "mode", "blas_threads")  # fmt: skip
    config = {k: t[k] for k in keys if k in t}
    return {"class": "Trainer", "config": config, "progress": progress,
            "n_optimizer_state": t.get("n_optimizer_state", 0)}  # fmt: skip


def _check_target(path: Path) -> None:
    """A clear error, before anything is written, when ``path`` cannot be a file."""
    parent = path.parent
    if not parent.exists():
        missing = next(p for p in [parent, *parent.parents] if p.exists() or p == p.parent)
        raise SymnnValueError(
            f"path={str(path)!r}: the folder {str(parent)!r} does not exist"
            + (f" ({str(missing)!r} is a file)." if missing.is_file() else ".")
        )
    if not parent.is_dir():
        raise SymnnValueError(f"path={str(path)!r}: {str(parent)!r} is not a folder.")
    if path.is_dir():
        raise SymnnValueError(f"path={str(path)!r} is a folder; expected a file name.")


def _umask() -> int:
    """The process umask, read without changing it (``os.umask`` sets it, racing other
    threads that create files)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:  # pragma: no cover - not Linux
        pass
    return 0o022


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if not path.is_file():
        raise SymnnValueError(f"path={str(path)!r} is not a file; expected a symnn .npz file.")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != b"PK\x03\x04":
        raise SymnnValueError(
            f"{path} is not a .npz archive (it starts with {magic!r}); "
            "expected a file written by symnn.save. Nothing in it was run."
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            if _HEADER not in names:
                raise SymnnValueError(f"{path} is not a symnn file (no {_HEADER} header).")
            arrays = {n: archive[n] for n in names}
    except SymnnValueError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise SymnnValueError(
                f"{path} holds a pickled object; symnn files hold plain arrays "
                "only and nothing in them is executed, so it is refused."
            ) from None
        raise SymnnValueError(f"{path} is not a readable symnn file: {exc}") from None
    except Exception as exc:  # any failure to parse an untrusted file: a damaged file
        raise SymnnValueError(
            f"{path} is damaged or truncated ({type(exc).__name__}: {exc}); "
            "expected a complete symnn .npz file."
        ) from None
    raw = arrays.pop(_HEADER)
    if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8 or raw.ndim != 1:
        raise SymnnValueError(f"{path} has a malformed header.")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SymnnValueError(f"{path} has a malformed header: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SymnnValueError(f"{path} is not a symnn file (format {header.get('format')!r}).")
    if header.get("version") not in (1, VERSION):
        raise SymnnValueError(
            f"{path} has format version {header.get('version')!r}; this symnn "
            f"reads version {VERSION}."
        )
    for name, arr in arrays.items():
        if not isinstance(arr, np.ndarray):
            raise SymnnValueError(
                f"{path}: member {name} is not a numpy array; symnn files hold "
                "plain arrays only, so it is refused (nothing was run)."
            )
        if arr.dtype.kind not in "biuf":
            raise SymnnValueError(f"{path}: array {name} has dtype {arr.dtype}; expected numbers.")
    return header, arrays


def _build_network(header: dict[str, Any], arrays: dict[str, np.ndarray], path: Path) -> Layer:
    network = layer_from_spec(header.get("architecture"))
    params = network.get_params()
    names = header.get("params", [])
    if len(names) != len(params):
        raise SymnnValueError(
            f"{path} has {len(names)} parameters; its architecture has {len(params)}."
        )
    values = []
    for i, p in enumerate(params):
        key = f"param_{i}"
        if key not in arrays:
            raise SymnnValueError(f"{path} is missing the array {key} ({names[i]}).")
        want = p.get_value(borrow=True)
        if arrays[key].shape != want.shape:
            raise SymnnValueError(
                f"{path}: parameter {names[i]} has shape {arrays[key].shape}; "
                f"the architecture needs {want.shape}."
            )
        values.append(arrays[key])
    network.set_values(values)
    _set_rng_states(network, header.get("rng_states", []))
    return network


def load(path: str | os.PathLike) -> Layer | Trainer:
    """Load what :func:`save` wrote: a network, or a ``Trainer`` ready to continue ``fit``.

    Whatever the file holds, a file that :func:`save` did not write raises
    ``SymnnValueError`` naming the problem; nothing in it is executed.
    """
    path = Path(path)
    header, arrays = _read(path)
    try:
        return _build(header, arrays, path)
    except SymnnError as exc:
        if isinstance(exc, SymnnValueError) and str(exc).startswith(str(path)):
            raise
        raise SymnnValueError(f"{path} has a malformed header: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        raise SymnnValueError(
            f"{path} has a malformed header ({type(exc).__name__}: {exc}); expected a file "
            "written by symnn.save."
        ) from None


def _build(header: dict[str, Any], arrays: dict[str, np.ndarray], path: Path) -> Layer | Trainer:
    network = _build_network(header, arrays, path)
    if header.get("kind") == "network":
        return network
    if header.get("kind") != "trainer":
        raise SymnnValueError(f"{path} holds an unknown kind {header.get('kind')!r}.")
    return _build_trainer(header.get("trainer"), network, arrays, path)


def _build_trainer(t: Any, network: Layer, arrays: dict[str, np.ndarray], path: Path) -> Any:
    if not isinstance(t, dict):
        raise SymnnValueError(f"{path} has malformed training settings.")
    if "class" not in t:  # format version 1
        t = _from_version_1(t)
    cls = TRAINERS.get(t.get("class"))
    if cls is None:
        raise SymnnValueError(
            f"{path} holds an unknown trainer class {t.get('class')!r}; expected one of "
            f"{', '.join(TRAINERS)}."
        )
    try:
        trainer = cls.from_config(network, t["config"])
        trainer.set_progress(t["progress"])
        n_state = int(t["n_optimizer_state"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SymnnValueError(f"{path} has malformed training settings: {exc}") from None
    if not 0 <= n_state <= len(arrays):
        raise SymnnValueError(f"{path} names {n_state} optimiser state arrays; it holds fewer.")
    missing = [f"opt_{i}" for i in range(n_state) if f"opt_{i}" not in arrays]
    if missing:
        raise SymnnValueError(f"{path} is missing the optimiser state array {missing[0]}.")
    kind = t["progress"].get("targets_kind")
    if n_state and kind:
        trainer.set_optimizer_state([arrays[f"opt_{i}"] for i in range(n_state)], kind)
    return trainer
