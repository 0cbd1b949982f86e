"""The built wheel is the product: build it, install it into a fresh virtual environment and render
a report from the installed package, away from the source tree (so the checkout cannot mask a file
the wheel forgot). No network: the wheel is installed without dependencies, and the new environment
reuses the packages of the one running the tests (as ``--system-site-packages`` would for a base
interpreter)."""
from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PACKAGES = [p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]]

# Runs inside the new environment, in an empty folder: a real fit, stored, read back and rendered.
RENDER = textwrap.dedent("""
    import json, sys
    from importlib import metadata
    from pathlib import Path
    import numpy as np
    import pandas as pd
    from packaging.requirements import Requirement
    import analysis, reports
    from analysis import ReflectionLasso
    from data.store import Store
    from reports import publish

    unmet = []
    for text in metadata.requires("lookingglass"):
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            try:
                version = metadata.version(req.name)
            except metadata.PackageNotFoundError:
                version = None
            if version is None or not req.specifier.contains(version, prereleases=True):
                unmet.append(f"{text} (installed: {version})")

    X = np.array([[-2.0, -2.0], [1.0, 2.0], [0.0, 1.0], [1.5, -0.5], [-1.0, 0.5]])
    y = np.array([-1.0, 1.0, -1.0, 0.5, 0.0])
    model = ReflectionLasso(depth=2, beta=0.1).fit(X, y)
    store = Store("workspace")
    run_id = store.create_run({"corpus": "wheel-test", "depths": [2]})
    store.put_points(run_id, pd.DataFrame({"idx": range(5), "id": [f"p{i}" for i in range(5)],
                                           "text": ["a", "b", "<c>", "d", "e"], "target": y, "label": None,
                                           "split": "train", "coords": X.tolist()}))
    store.put_fit(run_id, 2, {"beta": model.beta_, "beta_max": model.beta_max_, "objective": model.objective_,
                              "intercept": model.intercept_, "n_candidates": model.n_candidates_,
                              "certificate": model.certificate_, "metrics": {}, "timings": {}},
                  model.features_, None)
    store.update_run(run_id, status="completed")
    built = publish(store, "workspace/reports")
    print(json.dumps({"analysis": analysis.__file__, "reports": reports.__file__, "unmet": unmet,
                      "report": str(built[run_id].resolve()), "n_features": len(model.features_)}))
""")


def _stage_source(dest: Path) -> Path:
    """What a source distribution holds: the top-level files and the packages (no caches, no workspace)."""
    dest.mkdir()
    for path in ROOT.iterdir():
        if path.is_file():
            shutil.copy2(path, dest / path.name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.mark.slow
def test_wheel_ships_every_file_and_renders_a_report_when_installed(tmp_path):
    src = _stage_source(tmp_path / "src")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-q", "-w", str(tmp_path / "dist"), str(src)])
    (wheel,) = (tmp_path / "dist").glob("lookingglass-*.whl")

    # every file of the packages that is not Python source is package data the code reads at run time
    shipped = set(zipfile.ZipFile(wheel).namelist())
    data_files = sorted(p.relative_to(ROOT).as_posix() for package in PACKAGES for p in (ROOT / package).rglob("*")
                        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts)
    assert "reports/templates/style.css" in data_files
    assert [f for f in data_files if f not in shipped] == []

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    # the running environment's packages, appended after the new site-packages (a path entry in a .pth
    # file does not run the .pth files inside it, so an editable install of the checkout stays inert)
    (purelib / "_outer_env.pth").write_text("\n".join(site.getsitepackages()) + "\n", encoding="utf-8")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)])

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba-cache")
    out = json.loads(_run([python, "-c", RENDER], cwd=work, env=env).stdout.strip().splitlines()[-1])
    for module in ("analysis", "reports"):                    # imported from the wheel, not the checkout
        assert Path(out[module]).is_relative_to(purelib), out[module]
    assert out["unmet"] == [], "declared dependencies not met by the tested environment"
    page = Path(out["report"]).read_text(encoding="utf-8")
    css = (ROOT / "reports" / "templates" / "style.css").read_text(encoding="utf-8")
    css_rule = next(line for line in css.splitlines() if "{" in line)
    assert css_rule in page and "&lt;c&gt;" in page and out["n_features"] >= 1
    assert (work / "workspace" / "reports" / "index.html").is_file()
    assert _run([venv / "bin" / "lookingglass", "--help"], cwd=work, env=env).stdout.count("run")
