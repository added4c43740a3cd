"""Each command through its real entry point (``python -m symnn``), in a cheap compile mode."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # each command in a subprocess


def run(*args, cwd=None):
    env = {**os.environ, "SYMNN_MODE": "FAST_COMPILE"}
    return subprocess.run(
        [sys.executable, "-m", "symnn", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    res = run(
        "train",
        "--data",
        "digits",
        "--layers",
        "64,32,10",
        "--epochs",
        "3",
        "--batch-size",
        "64",
        "--out",
        str(out),
        "--no-progress",
        "--blas-threads",
        "1",
    )
    assert res.returncode == 0, res.stderr
    return out, res.stdout


def test_train_prints_a_table_and_writes_model_history_plots(trained):
    out, stdout = trained
    assert "test accuracy:" in stdout and "val_accuracy" in stdout
    assert len([ln for ln in stdout.splitlines() if ln.strip().startswith(("1 ", "2 ", "3 "))]) == 3
    for name in ("model.npz", "history.json", "curves.png", "weights.png"):
        assert (out / name).is_file(), name
    history = json.loads((out / "history.json").read_text())
    assert len(history["metrics"]["loss"]) == 3


def test_maximize_writes_grid_and_report(trained, tmp_path):
    out, _ = trained
    res = run(
        "maximize",
        str(out / "model.npz"),
        "--units",
        "0-3",
        "--steps",
        "10",
        "--blas-threads",
        "2",
        "--out",
        str(tmp_path),
    )
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert [u["unit"] for u in report["units"]] == [0, 1, 2, 3]
    assert (tmp_path / "maximized.png").is_file()
    assert "p(class)" in res.stdout


def test_demo_runs_end_to_end(tmp_path):
    res = run("demo", "--epochs", "2", "--steps", "10", "--out", str(tmp_path / "demo"))
    assert res.returncode == 0, res.stderr
    assert "test accuracy:" in res.stdout and "compiling" in res.stdout
    assert "one compiled call" in res.stdout
    accuracy = float(res.stdout.split("test accuracy: ")[1].split()[0])
    assert accuracy >= 0.75  # 2 epochs on digits; measured 0.844
    predicted = "predicted classes of the maximised inputs: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"
    assert predicted in res.stdout
    for name in ("maximized.png", "report.json", "model.npz", "curves.png", "weights.png"):
        assert (tmp_path / "demo" / name).is_file(), name


def test_compare_writes_table_and_plot(tmp_path):
    res = run(
        "compare",
        "--data",
        "digits",
        "--updates",
        "3",
        "--batch-size",
        "20",
        "--out",
        str(tmp_path),
    )
    assert res.returncode == 0, res.stderr
    assert "L-BFGS-B" in res.stdout and (tmp_path / "comparison.png").is_file()
    assert len(json.loads((tmp_path / "comparison.json").read_text())) == 6


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--data", "cifar"], "--data 'cifar' is not known"),
        (["train", "--layers", "64,x,10"], "must be comma-separated integers"),
        (["train", "--layers", "5,10"], "does not fit digits"),
        (["train", "--optimizer", "adamw"], "invalid choice: 'adamw'"),
        (["train", "--epochs", "abc"], "'abc': expected an integer >= 1"),
        (["train", "--blas-threads", "0"], "'0': expected 'auto' or a positive integer"),
        (["maximize", "no-such-model.npz"], "is not a file"),
        (["fly"], "invalid choice"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_code_2(args, message, tmp_path):
    res = run(*args, "--out", str(tmp_path)) if args[0] in ("train", "maximize") else run(*args)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


@pytest.mark.parametrize("command", ["train", "maximize", "compare", "demo", "info"])
def test_help_everywhere(command):
    res = run(command, "--help")
    assert res.returncode == 0 and "usage: symnn" in res.stdout


def test_console_script_is_installed_and_runs():
    import shutil

    exe = shutil.which(
        "symnn", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    )
    assert exe, "the symnn console script is not installed next to this Python"
    res = subprocess.run(
        [exe, "info"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SYMNN_MODE": "FAST_COMPILE"},
    )
    assert res.returncode == 0 and "backend:" in res.stdout


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    import symnn
    from symnn.layers import mlp

    return symnn.save(mlp([64, 8, 10], rng=0), tmp_path_factory.mktemp("m") / "net.npz")


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--epochs", "0"], "--epochs: '0': expected an integer >= 1"),
        (["train", "--batch-size", "0"], "--batch-size: '0': expected an integer >= 1"),
        (["train", "--validation-split", "2"], "--validation-split: '2': expected a number >= 0"),
        (["train", "--lr", "-1"], "--lr: '-1': expected a number > 0"),
        (["maximize", "MODEL", "--units", "0-12"], "units has index 10 out of range"),
        (["maximize", "MODEL", "--method", "lbfgs"], "invalid choice: 'lbfgs'"),
        (["maximize", "MODEL", "--image-shape", "27x27"], "--image-shape (27, 27) has 729 pixels"),
        (["maximize", "MODEL", "--steps", "0"], "--steps: '0'"),
        (["maximize", "MODEL", "--layer", "5"], "--layer 5 is out of range"),
        (["maximize", "MODEL", "--method", "tnc", "--jitter", "2"], "--jitter 2 has no effect"),
        (["maximize", "MODEL", "--method", "tnc", "--lr", "0.1"], "--lr 0.1 has no effect"),
        (["maximize", "MODEL", "--method", "tnc", "--blur-every", "3"], "--blur-every 3 has no"),
        (["maximize", "MODEL", "--method", "tnc", "--rotate", "5"], "--rotate 5.0 has no effect"),
        (["maximize", "MODEL", "--scale", "0.7"], "small transformations"),
        (["maximize", "MODEL", "--method", "tnc", "--precondition"], "--precondition True has no"),
        (["maximize", "MODEL", "--reference", "none", "--x0", "mean"], "--x0 'mean' needs"),
        (["maximize", "MODEL", "--reference", "none", "--prior", "gaussian"], "'gaussian' needs"),
        (["maximize", "MODEL", "--prior", "none", "--prior-weight", "2"], "--prior-weight 2.0 has"),
        (["maximize", "MODEL", "--reference", "iris"], "--reference has 4 features"),
        (["maximize", "MODEL", "--prior", "student"], "invalid choice: 'student'"),
        (["maximize", "MODEL", "--reference", "none", "--prior", "gmm"], "--prior 'gmm' needs"),
        (["maximize", "MODEL", "--spatial", "center"], "--spatial 'center' has no effect"),
        (["maximize", "MODEL", "--spatial", "3"], "'3' is not mean, center or a position Y,X"),
        (["maximize", "MODEL", "--param", "maco"], "--param acts on the images of --objective"),
        (["maximize", "MODEL", "--crop", "0.5,0.9"], "--crop acts on the images of --objective"),
        (["maximize", "MODEL", "--objective", "channel:0:1", "--crop", "0.5"],
         "expected LO,HI"),
        (["maximize", "MODEL", "--objective", "channel:0:1", "--crop", "0.5,2"],
         "--crop (0.5, 2.0): expected sides 0 < lo <= hi <= 1"),
        (["maximize", "MODEL", "--objective", "channel:dense9:0"],
         "--objective's layer 'dense9' is not a layer name"),
        (["maximize", "MODEL", "--objective", "channl:0:1"], "'channl' is not an objective"),
        (["maximize", "MODEL", "--objective", "channel:0:8"], "channel 8 is out of range"),
        (["maximize", "MODEL", "--objective", "channel:0:1", "--layer", "0", "--tv", "1"],
         "--layer, --tv choose(s) units for activation maximisation and have no effect"),
        (["maximize", "MODEL", "--objective", "channel:0:1", "--param", "maco", "--reference",
          "none"], "--param 'maco' fixes the spectrum's magnitude"),
    ],
)
def test_bad_values_are_refused_before_anything_compiles(
    args, message, model_file, tmp_path, capsys, monkeypatch
):
    """In-process: compiling anything fails the test, so each error comes first."""
    from symnn import backend, cli

    def no_compile(*a, **k):
        raise AssertionError("compiled before validating the arguments")

    monkeypatch.setattr(backend, "function", no_compile)
    monkeypatch.setattr("symnn.inputopt.objective.function", no_compile)
    monkeypatch.setattr("symnn.train.step.function", no_compile, raising=False)
    monkeypatch.setattr("symnn.inputopt.render.function", no_compile)
    monkeypatch.setattr("symnn.inputopt.engine.function", no_compile)
    args = [str(model_file) if a == "MODEL" else a for a in args]
    assert cli.main([*args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("command", ["train", "maximize", "demo", "compare"])
def test_a_bad_output_folder_is_one_line_and_exit_2(command, model_file, tmp_path, capsys):
    from symnn import cli

    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    extra = [str(model_file)] if command == "maximize" else []
    for out, message in (
        (a_file, "is a file; expected a folder"),
        (a_file / "sub", "cannot be created"),
        ("/proc/nope", "cannot be created"),
    ):
        assert cli.main([command, *extra, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_jitter_on_non_square_inputs_needs_an_image_shape(tmp_path, capsys):
    import symnn
    from symnn import cli
    from symnn.layers import mlp

    model = symnn.save(mlp([10, 4, 3], rng=0), tmp_path / "net.npz")
    for flag in ("--jitter", "--blur-every"):
        assert cli.main(["maximize", str(model), "--units", "0-2", flag, "2"]) == 2
        assert f"{flag} 2 needs an image" in capsys.readouterr().err


def test_train_without_layers_takes_the_widths_from_the_data_and_help_shows_defaults():
    from symnn.cli import build_parser

    args = build_parser().parse_args(["train"])
    assert args.layers is None and args.optimizer == "adam" and args.batch_size == 200
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "(default: 200)" in text and "(default: adam)" in text


def test_info_shortens_the_blas_flags(capsys):
    from symnn import cli

    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) < 200


def test_maximize_an_objective_writes_its_visualisations(model_file, tmp_path):
    """``--objective`` with ``--param``: ``--starts`` images, their values in the JSON and
    on the figure, the title naming the objective."""
    from symnn import cli

    out = tmp_path / "out"
    args = ["maximize", str(model_file), "--objective", "channel:dense0:3 - 0.5*diversity:dense0"]
    for param in ("fourier", "maco"):
        assert cli.main([*args, "--param", param, "--starts", "3", "--steps", "30",
                         "--jitter", "1", "--scale", "0.1", "--rotate", "5",
                         "--crop", "0.6,0.9", "--noise", "0.05",
                         "--out", str(out)]) == 0  # fmt: skip
        summary = json.loads((out / "visualized.json").read_text())
        assert summary["objective"] == "channel('dense0', 3) - 0.5 * diversity('dense0')"
        assert summary["param"] == param and len(summary["values"]) == 3
        assert (out / "visualized.png").stat().st_size > 1000


def test_maximize_with_a_prior_from_class_means_reports_dataset_examples(model_file, tmp_path):
    """``--reference auto`` finds digits for a 64-input model; the prior's weight per unit and
    the dataset examples reach the report."""
    import json

    from symnn import cli
    from symnn.inputopt.activation import AUTO_PRIOR_WEIGHTS

    out = tmp_path / "out"
    args = ["maximize", str(model_file), "--units", "0-2", "--x0", "class-mean", "--steps", "20"]
    assert cli.main([*args, "--top-k", "3", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["prior"] == "gmm"
    for row in report["units"]:
        assert row["prior_weight"] in AUTO_PRIOR_WEIGHTS and len(row["top_examples"]) == 3


def test_train_a_convolutional_network_from_arch_and_maximise_its_channels(tmp_path):
    out = tmp_path / "cnn"
    res = run(
        "train", "--data", "digits", "--arch", "conv6x3same,pool2,drop0.25,32,10",
        "--epochs", "4", "--batch-size", "32", "--out", str(out), "--no-progress",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "network: conv6x3same,pool2,drop0.25,32,10" in res.stdout
    accuracy = float(res.stdout.split("test accuracy:")[1].split()[0])
    assert accuracy > 0.5
    res = run("maximize", str(out / "model.npz"), "--layer", "1", "--units", "0-5",
              "--steps", "10", "--out", str(tmp_path / "max"))  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "max" / "maximized.png").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--arch", "conv6x3,blob,10"], "'blob' is not known"),
        (["--arch", "conv6x9,10"], "does not fit"),
        (["--arch", "conv6x3,12"], "ends with 12 units"),
        (["--arch", "conv6x3,10", "--layers", "64,10"], "--layers has no effect with --arch"),
        (["--arch", "conv6x3,10", "--dropout", "0.5"], "--dropout has no effect with --arch"),
    ],
)
def test_bad_arch_is_a_usage_error(args, message, tmp_path):
    res = run("train", "--data", "digits", "--epochs", "1", "--out", str(tmp_path), *args)
    assert res.returncode == 2 and message in res.stderr, res.stderr


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """An ONNX graph and a .safetensors of PyTorch-layout weights for a small CNN."""
    import numpy as np

    from symnn.io import to_onnx, write_safetensors
    from symnn.layers import from_arch

    folder = tmp_path_factory.mktemp("imported")
    to_onnx(from_arch("conv4x3same,pool2,10", (8, 8), rng=0), folder / "cnn.onnx")
    rng = np.random.default_rng(0)
    weights = {"1.weight": rng.normal(size=(4, 1, 3, 3)), "1.bias": np.zeros(4),
               "4.weight": rng.normal(size=(10, 64)), "4.bias": np.zeros(10)}  # fmt: skip
    write_safetensors(
        {k: v.astype("float32") for k, v in weights.items()}, folder / "w.safetensors"
    )
    return folder


def test_info_prints_an_imported_models_layers(imported):
    res = run("info", str(imported / "cnn.onnx"))
    assert res.returncode == 0, res.stderr
    assert "Conv2D" in res.stdout and "(4, 8, 8)" in res.stdout and "64 inputs" in res.stdout


def test_maximize_an_onnx_graph_and_safetensors_weights(imported, tmp_path):
    res = run("maximize", str(imported / "cnn.onnx"), "--units", "0-3", "--steps", "5",
              "--out", str(tmp_path / "a"))  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "a" / "maximized.png").is_file()
    res = run("maximize", str(imported / "w.safetensors"), "--arch", "conv4x3same,pool2,10",
              "--image-shape", "8x8", "--layer", "1", "--units", "0-3", "--steps", "5",
              "--out", str(tmp_path / "b"))  # fmt: skip
    assert res.returncode == 0, res.stderr
    _the_report_used_the_weights(imported / "w.safetensors", tmp_path / "b" / "report.json")
    res = run("maximize", str(imported / "w.safetensors"), "--out", str(tmp_path / "c"))
    assert res.returncode == 2 and "need --arch and --image-shape" in res.stderr
    res = run("maximize", str(imported / "cnn.onnx"), "--arch", "10", "--out", str(tmp_path))
    assert res.returncode == 2 and "--arch has no effect" in res.stderr


def _the_report_used_the_weights(weights, report):
    """Each channel's best activation on the reference digits, as the report gives it, is the
    one the .safetensors weights give (a network left with its initial weights would not)."""
    import json

    import numpy as np
    import pytensor
    import pytensor.tensor as pt

    from symnn.datasets import load_digits
    from symnn.inputopt import unit_activations
    from symnn.io import load_state_dict
    from symnn.layers import from_arch

    net = from_arch("conv4x3same,pool2,10", (8, 8), rng=0)
    load_state_dict(net, weights)
    x = pt.matrix("x", dtype="float32")
    acts = unit_activations(net, x, layer=1, preactivation=True)
    want = pytensor.function([x], acts)(load_digits().X_train.astype("float32")).max(axis=0)
    rows = json.loads(report.read_text())["units"]
    got = [row["reference_max"] for row in rows]
    np.testing.assert_allclose(got, want[[row["unit"] for row in rows]], rtol=1e-5)


def test_train_stores_the_class_names_with_the_model(trained):
    import symnn

    out, _ = trained
    assert symnn.load(out / "model.npz").network.class_names == [str(d) for d in range(10)]


def test_an_onnx_graph_of_one_sample_with_batch_axis_none(tmp_path):
    """``--batch-axis none``: a file whose tensors have no batch axis (from_onnx's
    ``batch_axis=None``); the flag on a symnn file or a bad value: usage errors."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Relu", ["m"], ["y"])],
        "sample", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        [numpy_helper.from_array(w, "W")],
    )  # fmt: skip
    path = tmp_path / "sample.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    res = run("info", str(path))
    assert res.returncode == 2 and "time-major" not in res.stderr, res.stderr
    res = run("info", str(path), "--batch-axis", "none")
    assert res.returncode == 0 and "6 inputs" in res.stdout, res.stderr
    res = run("maximize", str(path), "--batch-axis", "none", "--units", "0-3", "--steps", "5",
              "--image-shape", "2x3", "--out", str(tmp_path / "m"))  # fmt: skip
    assert res.returncode == 0 and (tmp_path / "m" / "report.json").is_file(), res.stderr
    res = run("info", str(path), "--batch-axis", "2")
    assert res.returncode == 2 and "expected 0, 1 or none; got '2'" in res.stderr
    (tmp_path / "x.npz").write_bytes(b"")
    res = run("info", str(tmp_path / "x.npz"), "--batch-axis", "1")
    assert res.returncode == 2 and "--batch-axis has no effect" in res.stderr
