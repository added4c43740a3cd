"""The API reference is generated from the docstrings (pdoc); building it in every test run
keeps it from going stale: every public module gets a page and every docstring renders."""

import importlib
import pkgutil

import pdoc
import pytest

import symnn

PUBLIC = sorted(
    m.name
    for m in pkgutil.walk_packages(symnn.__path__, "symnn.")
    if not any(part.startswith("_") for part in m.name.split("."))
    and m.name.split(".", 1)[1] not in (*symnn.DEPRECATED_MODULES, "layers.registry")
)


@pytest.mark.slow  # pdoc over every module
def test_api_reference_has_a_page_per_public_module(tmp_path):
    pdoc.pdoc(*PUBLIC, output_directory=tmp_path)
    pages = {
        p.relative_to(tmp_path).with_suffix("").as_posix().replace("/", ".")
        for p in tmp_path.rglob("*.html")
    }
    missing = [m for m in PUBLIC if m not in pages]
    assert not missing, missing
    text = (tmp_path / "symnn" / "train" / "trainer.html").read_text()
    assert "Trainer" in text and "training step once" in text


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_module_has_a_docstring(name):
    module = importlib.import_module(name)
    assert (module.__doc__ or "").strip(), f"{name} has no module docstring"
