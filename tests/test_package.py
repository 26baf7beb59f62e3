"""`pip install .` (not editable) must carry shaders, patches and models inside the wheel."""

import subprocess
import sys
import zipfile

from conftest import ROOT


def test_wheel_carries_data_and_plays_from_it(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("noclip-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("instrument/shaders/vhs.toml", "instrument/shaders/core/quad.vert",
                     "instrument/patches/default.toml", "instrument/cli.py", "instrument/web/remote.html"):
        assert required in names
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target",
                    str(site), str(wheel)], check=True, capture_output=True)
    probe = ("import instrument.resources as r, instrument.patch as p, instrument.catalogue as c; "
             "c.assemble(); print(r.data_dir('shaders')); print(p.load_patch('default').path)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}).stdout
    assert out.splitlines()[0] == str(site / "instrument" / "shaders")
    assert out.splitlines()[1].startswith(str(site / "instrument" / "patches"))
