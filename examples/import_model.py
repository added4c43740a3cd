"""Look inside a network trained elsewhere: a small PyTorch CNN trained on scikit-learn's digits
(when torch is installed) is brought in through its weights (a .safetensors file, read without
torch) and exported to ONNX and read back; without torch, a scikit-learn MLPClassifier is
written as an ONNX graph with onnx.helper and imported. Then activation maximisation of its
classes (with the density prior) and of its channels (or hidden units), with a figure.

    python examples/import_model.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytensor.tensor as pt
from _data import parser, wrote

from symnn import backend, datasets, io, plot
from symnn.inputopt import Reference, activation_maximization
from symnn.io import write_safetensors
from symnn.layers import from_arch

ARCH = "conv8x3same,pool2,conv16x3same,pool2,10"  # the symnn twin of the PyTorch CNN


def accuracy(network, data) -> float:
    x = pt.matrix("x", dtype=network.dtype)
    probs = backend.function([x], network(x, deterministic=True))(data.X_test)
    return float(np.mean(np.argmax(probs, axis=1) == data.y_test))


def torch_cnn(data, epochs: int, folder: Path):
    """Train a CNN in PyTorch; write its state_dict as .safetensors (numpy arrays)."""
    import torch

    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 2 * 2, 10),
    )  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    X = torch.from_numpy(data.X_train).reshape(-1, 1, 8, 8)
    y = torch.from_numpy(data.y_train.astype(np.int64))
    for _ in range(epochs):
        for idx in torch.randperm(len(X)).split(32):
            opt.zero_grad()
            nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(data.X_test).reshape(-1, 1, 8, 8)).argmax(1).numpy()
    path = folder / "torch_cnn.safetensors"
    write_safetensors({k: v.numpy() for k, v in model.state_dict().items()}, path)
    return path, float(np.mean(out == data.y_test))


def sklearn_onnx(data, epochs: int, folder: Path):
    """Train scikit-learn's MLPClassifier; write it as an ONNX graph with onnx.helper."""
    import warnings

    from onnx import TensorProto, helper, numpy_helper
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at a small budget
        mlp = MLPClassifier((64,), max_iter=epochs, random_state=0).fit(data.X_train, data.y_train)
    (W1, W2), (b1, b2) = mlp.coefs_, mlp.intercepts_
    inits = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
    nodes = [
        helper.make_node("Gemm", ["x", "W1", "b1"], ["h"], name="fc1"),
        helper.make_node("Relu", ["h"], ["a"], name="relu1"),
        helper.make_node("Gemm", ["a", "W2", "b2"], ["z"], name="fc2"),
        helper.make_node("Softmax", ["z"], ["p"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "sklearn_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(v.astype("float32"), k) for k, v in inits.items()],
    )  # fmt: skip
    path = folder / "sklearn_mlp.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(model.SerializeToString())
    return path, float(mlp.score(data.X_test, data.y_test))


def bring_in(data, epochs: int, folder: Path):
    """The imported network, what produced it, and its accuracy there."""
    try:
        import torch  # noqa: F401
    except ImportError:
        path, theirs = sklearn_onnx(data, epochs, folder)
        return io.from_onnx(path), f"scikit-learn MLP via ONNX ({path.name})", theirs
    path, theirs = torch_cnn(data, epochs, folder)
    network = from_arch(ARCH, data.image_shape)
    io.load_state_dict(network, path)
    onnx_path = io.to_onnx(network, folder / "torch_cnn.onnx")  # and out again, and back
    return io.from_onnx(onnx_path), f"PyTorch CNN via {path.name} and {onnx_path.name}", theirs


def main(epochs: int = 15, steps: int = 200, out: str = "out/import_model"):
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    data = datasets.load_digits()
    t0 = time.perf_counter()
    network, source, theirs = bring_in(data, epochs, folder)
    ours = accuracy(network, data)
    print(f"{source}: test accuracy {theirs:.4f} there, {ours:.4f} in symnn "
          f"({time.perf_counter() - t0:.1f} s)\n{network.summary()}")  # fmt: skip
    ref = Reference(data.X_train, labels=data.y_train)
    classes = activation_maximization(
        network, range(10), image_shape=(8, 8), steps=steps, reference=ref, x0="class-mean"
    )
    inner = next(i for i, la in enumerate(network.layers) if la.get_params())
    units = activation_maximization(
        network, range(8), layer=inner, image_shape=(8, 8), steps=steps,
        reference=Reference(data.X_train, labels=data.y_train, top_k=1), x0="facets",
    )  # fmt: skip
    print(f"\nclasses:\n{classes.to_table()}\n\nlayer {inner} units:\n{units.to_table()}")
    rows = [("classes", classes.images()),
            (f"layer {inner}", np.concatenate([units.images(), np.zeros((2, 8, 8))]))]  # fmt: skip
    path = folder / "imported_am.png"
    plot.plot_image_rows(rows, path, titles=[str(u) for u in range(10)], title=source)
    wrote(path)
    return {"ours": ours, "theirs": theirs, "classes": classes, "units": units,
            "network": network}  # fmt: skip


if __name__ == "__main__":
    ap = parser(__doc__, data=False)
    ap.epilog = "Data: scikit-learn's digits."
    ap.add_argument("--epochs", type=int, default=15, help="training epochs (elsewhere)")
    ap.add_argument("--steps", type=int, default=200, help="ascent steps per unit")
    ap.add_argument("--out", default="out/import_model", help="output folder")
    args = ap.parse_args()
    main(epochs=args.epochs, steps=args.steps, out=args.out)
