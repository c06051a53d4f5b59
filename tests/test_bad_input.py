"""Every bad input of the docs' table gets its one line and exit status 2, never a traceback.

Each case here is one row of the table in docs/reliability.md (Bad input); the last test checks
that the table quotes each message. Cases on damaged run files, a live lock and a full disk need
a run to damage and are in test_runstate.py; the data-file cases are in test_data.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assignment4.__main__ import main

REPO = Path(__file__).resolve().parent.parent
SMOKE = ["--profile", "smoke", "--runs", "{runs}"]
TF_EXAMPLE = '{"cluster": {"worker": ["127.0.0.1:23456"]}, "task": {"type": "worker", "index": 3}}'

# (row id, environment, arguments, the message; "{runs}" stands for the session's smoke runs)
CASES = [
    ("unknown id", {}, ["run", "vae_mnist_z3", *SMOKE],
     "Unknown experiment 'vae_mnist_z3'. Valid ids: vae_mnist_z128,"),
    ("unknown profile", {}, ["run", "vae_mnist_z2", "--profile", "tiny"],
     "Unknown profile 'tiny': choose one of full, quick, smoke."),
    ("epochs 0", {}, ["run", "vae_mnist_z2", *SMOKE, "--epochs", "0"],
     "argument --epochs: expected a positive integer, got 0"),
    ("epochs text", {}, ["run", "vae_mnist_z2", *SMOKE, "--epochs", "ten"],
     "argument --epochs: expected a positive integer, got 'ten'"),
    ("seed text", {}, ["run", "vae_mnist_z2", *SMOKE, "--seed", "abc"],
     "argument --seed: invalid int value: 'abc'"),
    ("strategy", {}, ["run", "vae_mnist_z2", *SMOKE, "--strategy", "tpu"],
     "argument --strategy: invalid choice: 'tpu'"),
    ("fewer epochs", {}, ["run", "vae_mnist_z2", *SMOKE, "--epochs", "1"],
     "already has 2 epochs, more than the 1 asked for"),
    ("other seed", {}, ["run", "vae_mnist_z2", *SMOKE, "--seed", "1"],
     "was trained with seed 0, this call asks for 1: the run cannot continue"),
    ("sample n 0", {}, ["sample", "vae_mnist_z2", *SMOKE, "-n", "0", "--out", "x.npy"],
     "argument -n: expected a positive integer, got 0"),
    ("sample out", {}, ["sample", "vae_mnist_z2", *SMOKE, "--out", "x.png"],
     "--out must name a .npy file, got x.png"),
    ("sample no run", {}, ["sample", "gan_mnist", *SMOKE, "--out", "x.npy"],
     "No finished run of gan_mnist under profile 'smoke'"),
    ("sample epoch", {}, ["sample", "vae_mnist_z2", *SMOKE, "--out", "x.npy", "--epoch", "7"],
     "has no checkpoint of epoch 7 (checkpoints: 1, 2). Choose one of those with --epoch N."),
    ("evaluate no run", {}, ["evaluate", "gan_mnist", *SMOKE],
     "Cannot evaluate gan_mnist (smoke)"),
    ("data set", {}, ["data", "foo"], "Unknown data set 'foo': choose one of mnist, cifar10."),
    ("ASSIGNMENT4_PROFILE", {"ASSIGNMENT4_PROFILE": "tiny"}, ["run", "vae_mnist_z2"],
     "Unknown profile 'tiny': choose one of full, quick, smoke."),
    ("CPU devices text", {"ASSIGNMENT4_CPU_DEVICES": "abc"},
     ["run", "vae_mnist_z2", *SMOKE, "--strategy", "mirrored"],
     "ASSIGNMENT4_CPU_DEVICES='abc' is not a positive integer"),
    ("CPU devices 0", {"ASSIGNMENT4_CPU_DEVICES": "0"},
     ["run", "vae_mnist_z2", *SMOKE, "--strategy", "mirrored"],
     "ASSIGNMENT4_CPU_DEVICES='0' is not a positive integer"),
    ("CPU devices late", {"ASSIGNMENT4_CPU_DEVICES": "2"},  # TensorFlow runs in pytest already
     ["run", "vae_mnist_z2", *SMOKE, "--strategy", "mirrored"],
     "ASSIGNMENT4_CPU_DEVICES=2 came too late: TensorFlow had already started."),
    ("TF_CONFIG unset", {"TF_CONFIG": ""},
     ["run", "vae_mnist_z2", *SMOKE, "--strategy", "multiworker"],
     "--strategy multiworker needs TF_CONFIG, which is not set."),
    ("TF_CONFIG json", {"TF_CONFIG": '{"cluster": '},
     ["run", "vae_mnist_z2", *SMOKE, "--strategy", "multiworker"],
     "TF_CONFIG is not valid JSON (Expecting value"),
    ("TF_CONFIG cluster", {"TF_CONFIG": '{"cluster": {"worker": "host1"}}'},
     ["run", "vae_mnist_z2", *SMOKE, "--strategy", "multiworker"],
     'TF_CONFIG needs "cluster": a job name -> list of "host:port"'),
    ("TF_CONFIG task", {"TF_CONFIG": '{"cluster": {"worker": ["h:1"]}, "task": {"type": "ps"}}'},
     ["run", "vae_mnist_z2", *SMOKE, "--strategy", "multiworker"],
     'TF_CONFIG needs "task" with a "type" among [\'worker\'] and an "index"'),
    ("TF_CONFIG index", {"TF_CONFIG": TF_EXAMPLE},
     ["run", "vae_mnist_z2", *SMOKE, "--strategy", "multiworker"],
     'TF_CONFIG "task" index 3 is not one of the 1 "worker" entries (0 to 0)'),
]  # fmt: skip


@pytest.mark.parametrize("env, argv, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_its_message_and_exit_2(smoke_runs, monkeypatch, capsys, env, argv, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    before = sorted(p for p in smoke_runs.rglob("*"))
    try:
        rc = main([a.replace("{runs}", str(smoke_runs)) for a in argv])
    except SystemExit as e:  # argparse
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    assert message in err, err
    if not err.startswith("usage:"):  # argparse prints its usage first; ours is one line
        assert err.startswith("error: ") and err.count("\n") == 1, err
    assert sorted(p for p in smoke_runs.rglob("*")) == before  # nothing written or deleted


def test_the_readme_table_quotes_every_message():
    readme = (REPO / "docs" / "reliability.md").read_text()
    table = readme[readme.index("## Bad input") :]
    for row, _, _, message in CASES:
        assert message.replace("|", "\\|") in table, row
