"""`pip install ./python` offline, the way the README says: Debian's
setuptools as the backend, no build isolation (nothing to download)."""

import os
import shutil
import subprocess
import sys

from h5a_util import PYTHON_DIR


def test_pip_install_offline(tmp_path):
    src = tmp_path / "python"
    shutil.copytree(PYTHON_DIR, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = tmp_path / "site"
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PIP_FIND_LINKS", None)  # no wheels from anywhere: offline
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps",
                        "--target", str(site), str(src)], env=env, capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    probe = ("import hdf5_async, os; print(hdf5_async.__file__); "
             "print(os.path.exists(os.path.join(os.path.dirname(hdf5_async.__file__), 'py.typed'))); "
             "print(hdf5_async.File, hdf5_async.__version__)")
    r = subprocess.run([sys.executable, "-c", probe], env=dict(env, PYTHONPATH=str(site)),
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    where, typed, _ = r.stdout.splitlines()
    assert where.startswith(str(site)) and typed == "True"


def test_annotations_resolve():
    """Every public function and method is annotated, and the annotations
    name things that exist (typing.get_type_hints evaluates them)."""
    import inspect
    import typing

    import hdf5_async

    missing = []
    for name in hdf5_async.__all__:
        obj = getattr(hdf5_async, name)
        members = [obj] if inspect.isfunction(obj) else [
            m for n, m in vars(obj).items() if inspect.isfunction(m) and not n.startswith("_")
        ] if inspect.isclass(obj) and obj.__module__.startswith("hdf5_async") else []
        for fn in members:
            hints = typing.get_type_hints(fn)
            if "return" not in hints:
                missing.append("%s.%s" % (name, fn.__name__))
    assert not missing, missing
