from pathlib import Path

import pytest

from instrument.params import REGISTRY
from instrument.patch import ConfigError, Patch, load_patch, patch_names, save_patch

GOOD = """version = 1
name = "t"
chain = "vhs"

[params]
seed = 4
bleed = 0.5
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "p.toml"
    p.write_text(text)
    return p


def test_every_shipped_patch_loads():
    assert "default" in patch_names()
    for name in patch_names():
        patch = load_patch(name)
        assert patch.chain and all(k in REGISTRY for k in patch.params)


def test_good_patch(tmp_path):
    p = load_patch(write(tmp_path, GOOD))
    assert p.params == {"seed": 4, "bleed": 0.5} and p.name == "t"


@pytest.mark.parametrize("text, line, key, words", [
    (GOOD.replace("bleed = 0.5", "bleeed = 0.5"), 7, "params.bleeed", "did you mean 'bleed'"),
    (GOOD.replace("bleed = 0.5", 'bleed = "lots"'), 7, "params.bleed", "not a number"),
    (GOOD + "colour = 3\n", 8, "params.colour", "unknown parameter"),
    (GOOD.replace('name = "t"', 'nmae = "t"'), 2, "nmae", "unknown key"),
    (GOOD.replace("version = 1", "version = 7"), 1, "version", "not one this noclip reads"),
    (GOOD.replace('chain = "vhs"', 'chain = "nope"'), 3, "chain", "no shader"),
    (GOOD.replace("[params]", "[params]\nseed = "), 6, "", "Invalid"),
])
def test_errors_name_file_line_and_key(tmp_path, text, line, key, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_patch(path)
    e = err.value
    assert e.path == path and e.line == line and e.key == key
    assert words.lower() in str(e).lower()
    assert str(e).startswith(f"{path}:{line}:")


@pytest.mark.parametrize("dream", ["[320, 480]", "[640, 240, 1]", "[8, 8]", '"small"'])
def test_dream_size_fits_inside_the_scene(tmp_path, dream):
    text = GOOD.replace('chain = "vhs"', f'chain = "vhs"\nsize = [256, 192]\ndream_size = {dream}')
    with pytest.raises(ConfigError) as err:
        load_patch(write(tmp_path, text))
    assert err.value.key == "dream_size" and err.value.line == 5


def test_dream_size_round_trips(tmp_path):
    text = GOOD.replace('chain = "vhs"', 'chain = "vhs"\nsize = [640, 480]\ndream_size = [256, 192]')
    patch = load_patch(write(tmp_path, text))
    assert patch.size == (640, 480) and patch.dream == (256, 192)
    save_patch(patch, tmp_path / "saved.toml")
    assert load_patch(tmp_path / "saved.toml").dream_size == (256, 192)
    assert load_patch(write(tmp_path, GOOD)).dream == load_patch(write(tmp_path, GOOD)).size


def test_out_of_range_values_clamp(tmp_path):
    assert load_patch(write(tmp_path, GOOD.replace("bleed = 0.5", "bleed = 9"))).params["bleed"] == 1.0


def test_save_then_load_round_trips(tmp_path):
    patch = load_patch(write(tmp_path, GOOD)).with_params(tracking=0.25)
    out = tmp_path / "saved.toml"
    save_patch(patch, out)
    again = load_patch(out)
    assert again.params == patch.params and again.chain == patch.chain


def test_missing_patch_is_clear():
    with pytest.raises(FileNotFoundError, match="no patch 'nonexistent'"):
        load_patch("nonexistent")


def test_patch_defaults():
    assert Patch().model == "builtin"  # the bundled model, everywhere, unless a patch says otherwise
    assert load_patch("default").model == "builtin" and load_patch("testcard").model == "none"


def test_patch_reads_are_capped_and_only_regular_files(tmp_path):
    """patch/load <path> from this machine reads at most 1 MB, and never a device or a pipe."""
    import os

    from instrument.patch import MAX_BYTES

    big = tmp_path / "big.toml"
    big.write_text("version = 1\n" + "# padding\n" * (MAX_BYTES // 10 + 1))
    with pytest.raises(ConfigError, match="at most 1,048,576"):
        load_patch(big)
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    with pytest.raises((ConfigError, FileNotFoundError)):
        load_patch(fifo)  # never opened: reading a pipe would block the loop
    with pytest.raises((ConfigError, FileNotFoundError)):
        load_patch("/dev/zero")  # never read: it has no end
