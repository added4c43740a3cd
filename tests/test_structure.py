"""The shape of the code: four floors with imports going only downward, no import cycle,
and short functions with short parameter lists (the exceptions are listed, with why)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "symnn"

#: floor 0 is the shared foundation (errors, helpers); then backend -> graph -> engines ->
#: surface. A module may import its own floor or lower ones.
FLOORS = {
    "errors": 0,
    "utils": 0,
    "version": 0,
    "backend": 1,
    "threads": 1,  # deprecated aliases: backend.threads, train.scipy, io.*
    "fullbatch": 3,
    "state_dict": 4,
    "onnx_io": 4,
    "safetensors": 4,
    "nonlinearities": 2,
    "init": 2,
    "layers": 2,
    "costs": 2,
    "regularization": 2,
    "updates": 2,
    "gradcheck": 2,
    "ops": 2,
    "train": 3,
    "inputopt": 3,
    "compare": 4,
    "estimator": 4,
    "io": 4,
    "datasets": 4,
    "plot": 4,
    "cli": 4,
    "__main__": 4,
    "__init__": 4,
}

#: public signatures kept as they are, with the reason; every other function has at most
#: 8 parameters and 60 lines of code (its docstring not counted)
EXCEPTIONS = {
    "estimator/mlp.py:__init__": "scikit-learn's MLPClassifier/MLPRegressor parameters (drop-in)",
    "estimator/net.py:__init__": "scikit-learn's MLP training parameters (as MLPClassifier)",
    "inputopt/maximize.py:maximize": "its parameter names are a contract (the inputopt issue)",
    "inputopt/activation.py:activation_maximization": (
        "the target (layer, preactivation, probability, spatial), the starts (n_starts, x0, "
        "seed, bounds), image_shape, penalties, reference, prior; maximize's options as **ascent"
    ),
    "train/trainer.py:__init__": "public keyword API kept (Trainer's settings)",
    "train/trainer.py:fit": "public keyword API kept (Keras-style fit; rules are callbacks)",
    "train/scipy.py:__init__": "mirrors Trainer's settings",
    "train/scipy.py:fit": "mirrors Trainer.fit where the arguments mean the same",
    "ops/gather.py:c_code": "returns a C code template",
    "ops/conv.py:c_code": "returns a C code template (Im2Col, Col2Im, Pool2D, Pool2DGrad)",
    "layers/conv.py:__init__": "Conv2D: Lasagne's Conv2DLayer signature (a contract, issue 18)",
    "layers/transposed.py:__init__": "ConvTranspose2D: Conv2D's signature + output_padding "
    "(PyTorch's ConvTranspose2d, groups included)",
    "layers/recurrent.py:__init__": (
        "RNN/LSTM/GRU: Lasagne's recurrent keywords (only_return_final, backwards, "
        "gradient_steps, grad_clipping, precompute_input, learn_init; a contract, issue 32)"
    ),
}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        yield rel, ast.parse(path.read_text())


def _imports(rel: Path, tree: ast.AST):
    """The symnn modules ``rel`` imports, as dotted names relative to the package."""
    package = list(rel.with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = package[: len(package) - (node.level - 1)]
            if node.module:
                yield ".".join([*base, node.module])
            else:
                yield from (".".join([*base, a.name]) for a in node.names)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = (
                [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            )
            yield from (n[len("symnn.") :] for n in names if n and n.startswith("symnn."))


def _floor(dotted: str) -> int:
    top = dotted.split(".")[0] or "__init__"
    assert top in FLOORS, f"module {top!r} has no floor; add it to FLOORS"
    return FLOORS[top]


def test_imports_go_only_down_the_floors():
    upward = []
    for rel, tree in _modules():
        me = rel.with_suffix("").parts[0]
        for target in _imports(rel, tree):
            if target.split(".")[0] != me and _floor(target) > _floor(me):
                upward.append(f"{rel} imports {target}")
    assert not upward, upward


def _module_of(dotted: str, known: set[str]) -> str:
    """The module a dotted import names (a name imported from a package is the package)."""
    while dotted and dotted not in known:
        dotted = dotted.rpartition(".")[0]
    return dotted or "__init__"


def test_no_import_cycle():
    modules = {}
    for rel, tree in _modules():
        name = ".".join(rel.with_suffix("").parts)
        modules[name.removesuffix(".__init__") if name != "__init__" else "__init__"] = tree
    known = set(modules)
    rels = {name: Path(*name.split(".")) for name in modules}
    graph = {}
    for name, tree in modules.items():
        rel = (
            rels[name] / "__init__.py"
            if (PACKAGE / rels[name]).is_dir()
            else rels[name].with_suffix(".py")
        )
        graph[name] = {_module_of(t, known) for t in _imports(rel, tree)} - {name}
    # a package's __init__ re-exporting its modules is not a cycle with them
    state, cycles = {}, []

    def visit(node, path):
        state[node] = "active"
        for nxt in graph.get(node, ()):
            if nxt.startswith(node + ".") or node == "__init__":
                continue
            if state.get(nxt) == "active":
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [node])
    assert not cycles, cycles


def _functions():
    for rel, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield f"{rel.as_posix()}:{node.name}", node


def _code_lines(node) -> int:
    first = node.body[0]
    doc = (
        first.end_lineno - first.lineno + 1
        if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant)
        else 0
    )
    return node.end_lineno - node.lineno + 1 - doc


def _parameters(node) -> int:
    a = node.args
    n = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) + bool(a.vararg) + bool(a.kwarg)
    return n - (1 if a.args and a.args[0].arg in ("self", "cls") else 0)


def test_functions_are_short_with_short_parameter_lists():
    too_long = [
        f"{name} ({_code_lines(node)} lines, {_parameters(node)} parameters)"
        for name, node in _functions()
        if (_code_lines(node) > 60 or _parameters(node) > 8) and name not in EXCEPTIONS
    ]
    assert not too_long, too_long


@pytest.mark.parametrize("name", sorted(EXCEPTIONS))
def test_every_listed_exception_still_exists(name):
    assert name in dict(_functions()), f"{name} no longer exists; drop it from EXCEPTIONS"


#: modules allowed past MODULE_LINES, with why
LONG_MODULES = {
    "ops/conv.py": "four C ops (Im2Col, Col2Im, Pool2D, Pool2DGrad) with their C code templates",
}
MODULE_LINES = 550


def test_one_idea_per_module_keeps_modules_short():
    long = {
        str(rel): n
        for rel, _ in _modules()
        if (n := len((PACKAGE / rel).read_text().splitlines())) > MODULE_LINES
        and str(rel) not in LONG_MODULES
    }
    assert not long, f"split these by idea (or list them in LONG_MODULES, with why): {long}"


def test_the_deprecated_paths_are_aliases_that_warn():
    """Old module paths stay for one release: each only re-exports and warns."""
    import symnn

    for name in (*symnn.DEPRECATED_MODULES, "layers/registry"):
        text = (PACKAGE / f"{name.replace('.', '/')}.py").read_text()
        assert "DeprecationWarning" in text and "0.3" in text, name
        assert "def " not in text and "class " not in text, f"{name} defines code of its own"
