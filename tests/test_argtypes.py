"""Command-line values: the argparse types shared by ``detinit`` and ``benchmarks/``, and every benchmark
script refusing an argument it does not take (a new script without a parser fails here)."""

import argparse
import math
import subprocess
import sys
from pathlib import Path

import pytest

from detinit import argtypes
from detinit.atomic import OutputDirError, check_output_file

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.name for p in (REPO / "benchmarks").glob("*.py"))


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        (argtypes.positive_int, {"1": 1, "12": 12}, ["0", "-3", "1.5", "two", ""]),
        (argtypes.non_negative_int, {"0": 0, "7": 7}, ["-1", "nan", "3e2"]),
        (argtypes.random_seed, {"0": 0, str(2**32 - 1): 2**32 - 1}, ["-1", str(2**32), "0x"]),  # seed 2**32 is seed 0
        (argtypes.positive_float, {"0.1": 0.1, "2e-3": 2e-3}, ["0", "-1", "nan", "inf", "x"]),
        (argtypes.pair, {"bert:BertModel": ("bert", "BertModel")}, ["bert", ":B", "A:", "a:b:c"]),
    ],
)
def test_each_type_takes_its_values_and_refuses_the_rest_naming_the_value(kind, good, bad):
    for text, value in good.items():
        assert kind(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=r"must|not|seed|form") as error:
            kind(text)
        assert repr(text) in str(error.value) or text in str(error.value)


def test_an_output_file_is_not_a_folder_nor_under_a_file_and_may_be_in_a_new_folder(tmp_path):
    (tmp_path / "afile").write_text("x")
    assert check_output_file(tmp_path / "new" / "deeper" / "out.jsonl") == tmp_path / "new" / "deeper" / "out.jsonl"
    for path, words in [
        ("", "empty"),
        (tmp_path, "is a folder"),
        (tmp_path / "afile" / "x.md", "is a file, not a folder"),
    ]:
        with pytest.raises(OutputDirError, match=words):
            check_output_file(path, "--markdown")
    with pytest.raises(argparse.ArgumentTypeError, match="is a folder"):
        argtypes.output_file(str(tmp_path))
    assert argtypes.existing_file(str(tmp_path / "afile")) == tmp_path / "afile"
    for path, words in [(tmp_path, "a folder"), (tmp_path / "missing.md", "not there")]:
        with pytest.raises(argparse.ArgumentTypeError, match=words):
            argtypes.existing_file(str(path))


def test_a_parser_names_the_flag_and_exits_2(capsys):
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--lr", type=argtypes.positive_float, default=1e-3)
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["--lr", "nan"])
    assert stop.value.code == 2
    assert "argument --lr: nan must be a finite number > 0" in capsys.readouterr().err
    assert math.isclose(parser.parse_args([]).lr, 1e-3)


def test_no_options_refuses_any_argument(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["script.py", "--typo"])
    with pytest.raises(SystemExit):
        argtypes.no_options("A script.\n\nMore.")
    assert "unrecognized arguments: --typo" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["script.py"])
    assert vars(argtypes.no_options(None)) == {}


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_benchmark_script_refuses_an_option_it_does_not_take(script):
    """Before any work: a script that ignored it would run for minutes on what the user did not ask for."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), "--no-such-option"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 2, proc.stderr[-500:]
    assert "unrecognized arguments: --no-such-option" in proc.stderr
    assert "Traceback" not in proc.stderr
