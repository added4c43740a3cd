import os
import pickle
import signal
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import symnn
from symnn.datasets import load_digits
from symnn.errors import SymnnTypeError, SymnnValueError
from symnn.layers import mlp
from symnn.train import Trainer


@pytest.fixture(scope="module")
def data():
    d = load_digits()
    return d.X_train[:300], d.y_train[:300]


def _trainer():
    return Trainer(
        mlp([64, 16, 10], rng=0, dropout=0.2, batch_norm=True),
        optimizer="adam",
        learning_rate=0.01,
        seed=5,
    )


def test_network_round_trip(tmp_path):
    net = mlp([5, 4, 3], hidden="tanh", rng=0, batch_norm=True)
    path = symnn.save(net, tmp_path / "net.npz")
    again = symnn.load(path)
    assert repr(again) == repr(net)
    for a, b in zip(net.get_values(), again.get_values()):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


def test_two_epochs_save_load_two_epochs_equals_four_straight(tmp_path, data):
    straight = _trainer()
    straight.fit(*data, epochs=4, batch_size=50)
    first = _trainer()
    first.fit(*data, epochs=2, batch_size=50)
    resumed = symnn.load(symnn.save(first, tmp_path / "run"))
    resumed.fit(*data, epochs=2, batch_size=50)
    for a, b in zip(straight.network.get_values(), resumed.network.get_values()):
        np.testing.assert_array_equal(a, b)
    assert resumed.history.batch_loss == straight.history.batch_loss
    assert resumed.n_updates == straight.n_updates == 24


def test_pickle_payload_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.npz"
    np.savez(
        path,
        __symnn__=np.frombuffer(b'{"format": "symnn", "version": 1}', np.uint8),
        param_0=np.array([Payload()], dtype=object),
    )
    with pytest.raises(SymnnValueError, match="pickled object"):
        symnn.load(path)
    assert not marker.exists()
    raw = tmp_path / "raw.npz"
    raw.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(SymnnValueError):
        symnn.load(raw)
    assert not marker.exists()


def test_truncated_wrong_version_and_mismatched_files_are_refused(tmp_path):
    path = symnn.save(mlp([4, 3, 2], rng=0), tmp_path / "net.npz")
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(SymnnValueError, match="damaged or truncated"):
        symnn.load(tmp_path / "cut.npz")
    with zipfile.ZipFile(path) as z:
        arrays = {n[:-4]: np.load(z.open(n)) for n in z.namelist()}
    header = arrays["__symnn__"].tobytes().replace(b'"version": 2', b'"version": 99')
    np.savez(tmp_path / "v99.npz", **{**arrays, "__symnn__": np.frombuffer(header, np.uint8)})
    with pytest.raises(SymnnValueError, match="format version 99"):
        symnn.load(tmp_path / "v99.npz")
    np.savez(tmp_path / "shape.npz", **{**arrays, "param_0": np.zeros((5, 3), np.float32)})
    with pytest.raises(SymnnValueError, match=r"shape \(5, 3\); the architecture needs \(4, 3\)"):
        symnn.load(tmp_path / "shape.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(SymnnValueError, match="not a symnn file"):
        symnn.load(tmp_path / "other.npz")
    with pytest.raises(SymnnValueError, match="is not a file"):
        symnn.load(tmp_path / "missing.npz")


def test_save_rejects_what_it_cannot_describe(tmp_path):
    with pytest.raises(SymnnTypeError, match="must be a symnn network or Trainer"):
        symnn.save({"W": 1}, tmp_path / "x.npz")
    t = Trainer(mlp([2, 2], rng=0), optimizer=lambda loss, params, learning_rate: {})
    with pytest.raises(SymnnValueError, match="custom function"):
        symnn.save(t, tmp_path / "x.npz")


def test_save_killed_midway_leaves_the_previous_file_loadable(tmp_path):
    path = symnn.save(mlp([4, 3, 2], rng=0), tmp_path / "net.npz")
    before = path.read_bytes()
    script = textwrap.dedent(f"""
        import os, numpy as np, symnn
        from symnn.layers import mlp
        real = np.savez
        def slow_savez(fh, **arrays):
            fh.write(b"partial")
            fh.flush()
            print("writing", flush=True)
            import time; time.sleep(60)
        np.savez = slow_savez
        symnn.save(mlp([4, 3, 2], rng=1), {str(path)!r})
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "SYMNN_MODE": "FAST_COMPILE"},
    )
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert path.read_bytes() == before
    assert len(symnn.load(path).get_values()) == 4


def _rewrite_header(src, dst, edit):
    """Copy a symnn file with its JSON header changed by ``edit(header)``."""
    import json

    with np.load(src, allow_pickle=False) as archive:
        arrays = {n: archive[n] for n in archive.files}
    header = json.loads(arrays["__symnn__"].tobytes().decode())
    edit(header)
    arrays["__symnn__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(dst, **arrays)
    return dst


_WRONG_VALUES = [None, 5, -1, 1e308, "x", [], [1, "a"], {}, {"a": []}, True]


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory, data):
    t = _trainer()
    t.fit(*data, epochs=1, batch_size=100)
    return symnn.save(t, tmp_path_factory.mktemp("run") / "run.npz")


def _paths(header, prefix=()):
    for key, value in header.items():
        if key in ("format", "version"):
            continue
        yield (*prefix, key)
        if isinstance(value, dict):
            yield from _paths(value, (*prefix, key))


@pytest.mark.slow  # hundreds of files
def test_every_malformed_header_field_gives_a_symnn_value_error(saved_run, tmp_path):
    """Each field of a real file's header (nested ones included) replaced by each wrong
    value: loading either works or raises SymnnValueError, never a raw numpy/Python error."""
    import json

    with np.load(saved_run, allow_pickle=False) as archive:
        header = json.loads(archive["__symnn__"].tobytes().decode())
    tried = 0
    for path in _paths(header):
        for wrong in _WRONG_VALUES:

            def edit(h, path=path, wrong=wrong):
                for key in path[:-1]:
                    h = h[key]
                h[path[-1]] = wrong

            bad = _rewrite_header(saved_run, tmp_path / "bad.npz", edit)
            try:
                symnn.load(bad)
            except SymnnValueError:
                pass
            tried += 1
    assert tried > 150


def test_save_into_a_file_or_missing_folder_is_a_clear_error(tmp_path):
    net = mlp([3, 2], rng=0)
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    with pytest.raises(SymnnValueError, match="afile' is not a folder") as info:
        symnn.save(net, a_file / "x.npz")
    assert ".tmp" not in str(info.value)
    with pytest.raises(SymnnValueError, match="does not exist"):
        symnn.save(net, tmp_path / "nowhere" / "x.npz")
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(SymnnValueError, match="is a folder"):
        symnn.save(net, tmp_path / "dir.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "dir.npz"]


def test_saved_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = symnn.save(mlp([3, 2], rng=0), tmp_path / "net.npz")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640


def test_a_users_own_layer_saves_and_loads_after_register(tmp_path):
    import pytensor.tensor as pt

    from symnn.init import Constant
    from symnn.layers import Dense, Layer, Sequential, register

    @register
    class Gain(Layer):
        """y = x * g, one learnable gain per feature."""

        def __init__(self, n_units: int, name=None, dtype=None):
            super().__init__(name, dtype)
            self.n_units = n_units
            self.n_in = n_units
            self.g = self.add_param(Constant(1.0), (n_units,), "g")

        def get_output_for(self, x, *, deterministic=False):
            return x * self.g

    net = Sequential([Dense(3, 4, rng=0), Gain(4, name="gain")])
    net.layers[1].g.set_value(np.arange(4, dtype="float32"))
    again = symnn.load(symnn.save(net, tmp_path / "custom"))
    x = pt.matrix("x", dtype="float32")
    xv = np.ones((2, 3), dtype="float32")
    np.testing.assert_array_equal(again(x).eval({x: xv}), net(x).eval({x: xv}))
    assert type(again.layers[1]).__name__ == "Gain" and again.layers[1].name == "gain"


def test_an_unregistered_subclass_is_refused_at_save_not_at_load(tmp_path):
    from symnn.layers import Dense, Sequential

    class MyDense(Dense):
        pass

    net = Sequential([MyDense(3, 2, rng=0)])
    with pytest.raises(SymnnValueError, match="MyDense is not a registered layer.*register"):
        symnn.save(net, tmp_path / "x")
    assert not list(tmp_path.iterdir())


def test_class_names_are_saved_with_the_network(tmp_path):
    from symnn.layers import mlp

    net = mlp([4, 3, 2], rng=0)
    assert net.class_names is None
    net.class_names = ["cat", "dog"]
    loaded = symnn.load(symnn.save(net, tmp_path / "net"))
    assert loaded.class_names == ["cat", "dog"]
    with pytest.raises(symnn.SymnnValueError, match="one name per output unit"):
        net.class_names = ["cat"]


@pytest.mark.parametrize(
    "old, new",
    [("state_dict", "symnn.io.state_dict"), ("safetensors", "symnn.io.safetensors"),
     ("onnx_io", "symnn.io.onnx"), ("fullbatch", "symnn.train.scipy"),
     ("threads", "symnn.backend.threads"), ("compare", "symnn.train.compare"),
     ("layers.registry", "symnn.layers.base")],
)  # fmt: skip
def test_old_module_paths_warn_and_give_the_same_objects(old, new, monkeypatch):
    import importlib
    import sys

    monkeypatch.delitem(sys.modules, f"symnn.{old}", raising=False)
    with pytest.warns(DeprecationWarning, match=rf"symnn\.{old}.*0\.3"):
        module = importlib.import_module(f"symnn.{old}")
    target = importlib.import_module(new)
    assert module.__all__
    for name in module.__all__:
        assert getattr(module, name) is getattr(target, name), name
