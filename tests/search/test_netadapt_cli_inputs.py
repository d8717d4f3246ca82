"""mnas-netadapt checks its files before any work: one ``mnas-netadapt: error:`` line, exit 2.

Found by a new user's pass: ``--run_dir`` naming a file trained the seed for minutes, then
failed with ``'<path>': File exists``; a garbage ``--model`` file was reported as
``File not found`` although it exists.
"""

import numpy as np
import pytest


def _fail_if_training(*args, **kwargs):
    raise AssertionError("the seed was trained before the bad input was reported")


@pytest.fixture
def main(monkeypatch):
    from mnas_keras.search.netadapt import loop
    from mnas_keras.search.netadapt.cli import main

    monkeypatch.setattr(loop, "fine_tune", _fail_if_training)
    return main


def _one_error_line(main, argv, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1, err
    assert err[0].startswith("mnas-netadapt: error: ")
    return err[0]


def test_run_dir_that_is_a_file_is_refused_before_training(main, tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("keep me")
    line = _one_error_line(main, [f"--run_dir={path}", "--latency=madds"], capsys)
    assert line == f"mnas-netadapt: error: --run_dir '{path}' is a file; expected a directory"
    assert path.read_text() == "keep me"


def test_garbage_model_file_is_named_as_not_a_keras_archive(main, tmp_path, capsys):
    path = tmp_path / "model.keras"
    path.write_bytes(b"PK\x03\x04 truncated")
    line = _one_error_line(main, [f"--model={path}", f"--run_dir={tmp_path / 'run'}", "--latency=madds"], capsys)
    assert f"'{path}' is not a valid .keras archive" in line


def test_bad_learning_rate_names_the_value(main, tmp_path, capsys):
    line = _one_error_line(main, ["--learning_rate=nan", f"--run_dir={tmp_path / 'run'}", "--latency=madds"], capsys)
    assert "learning_rate" in line and "nan" in line


def test_netadapt_names_a_garbage_keras_file(tmp_path):
    from mnas_keras._serialization import InvalidKerasFileError
    from mnas_keras.search.netadapt.latency import MAddsLatency
    from mnas_keras.search.netadapt.loop import NetAdapt, NetAdaptConfig

    path = tmp_path / "seed.keras"
    path.write_bytes(b"PK\x03\x04 truncated")
    data = ((np.zeros((4, 32, 32, 3), "float32"), np.zeros(4, "int32")),) * 2  # never reached
    with pytest.raises(InvalidKerasFileError, match=rf"'{path}' is not a valid \.keras archive"):
        NetAdapt(str(path), data, MAddsLatency(input_size=32), NetAdaptConfig(), str(tmp_path / "run")).run_loop()


def test_flags_that_would_be_ignored_are_refused(main, tmp_path, capsys):
    path = tmp_path / "seed.keras"
    path.write_bytes(b"PK")  # never read: the flags are checked first
    line = _one_error_line(main, [f"--model={path}", "--arch=mnasnet_a1", "--alpha=0.75",
                                  f"--run_dir={tmp_path / 'run'}"], capsys)
    assert line == ("mnas-netadapt: error: --arch=mnasnet_a1, --alpha=0.75 describe the seed trained when no --model "
                    f"is given; received --model={path}")
    line = _one_error_line(main, [f"--table={path}", "--latency=madds", f"--run_dir={tmp_path / 'run'}"], capsys)
    assert line == "mnas-netadapt: error: --table is read only with --latency=table; received --latency=madds"
    line = _one_error_line(main, ["--delta=0.02", "--min_delta=0.03", f"--run_dir={tmp_path / 'run'}"], capsys)
    assert line == "mnas-netadapt: error: --min_delta must be in [0, --delta=0.02]; received 0.03"


def test_min_delta_default_halves_5_percent_twice_and_never_above_delta():
    from mnas_keras.search.netadapt.cli import _min_delta, parser

    assert _min_delta(parser().parse_args([])) == 0.0125  # 5% -> 2.5% -> 1.25%
    assert _min_delta(parser().parse_args(["--delta=0.01"])) is None  # MobileNetV3's 1%: NetAdapt's stop
    assert _min_delta(parser().parse_args(["--min_delta=0"])) is None
    assert _min_delta(parser().parse_args(["--delta=0.04", "--min_delta=0.01"])) == 0.01


def test_run_dir_of_another_run_is_refused_before_the_seed_is_trained(main, tmp_path, capsys):
    """Nothing is written into a directory holding another run: the refusal comes before the
    seed's training (a minute) and the run's latency table."""
    import json
    import os

    other = tmp_path / "search_run"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"space": "mnasnet", "controller": "ppo"}))
    line = _one_error_line(main, [f"--run_dir={other}"], capsys)
    assert line == (f"mnas-netadapt: error: --run_dir {other} holds another tool's run (its config.json has no "
                    "NetAdapt settings); use another directory, or --overwrite to delete that run")
    assert sorted(os.listdir(other)) == ["config.json"]

    run = tmp_path / "netadapt_run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"netadapt": {"steps": 7}, "latency": {"source": "measured"}}))
    line = _one_error_line(main, [f"--run_dir={run}"], capsys)
    assert line.startswith(f"mnas-netadapt: error: run directory {run} holds a run with different data, latency, "
                           "netadapt; ")
    assert "latency.source was 'measured', is now 'table'" in line and "netadapt.steps was 7, is now 40" in line
    assert line.endswith("use another directory, the same options, or --overwrite")
    assert sorted(os.listdir(run)) == ["config.json"]


def test_rerun_with_other_seed_flags_is_refused_not_answered_with_the_old_seed(tmp_path, capsys, monkeypatch):
    """Without --model the run trains its own seed once (trained.keras) and reuses it on a
    rerun; a rerun asking for another --arch, --alpha or --seed_train_steps got the old seed's
    run back as if it were the new one. It is refused before anything is trained or written."""
    import json
    import os

    from mnas_keras.search.netadapt import loop
    from mnas_keras.search.netadapt.cli import main

    run = tmp_path / "run"
    argv = [f"--run_dir={run}", "--seed_train_steps=0", "--latency=madds", "--latency_size=32", "--target_ms=1000",
            "--final_steps=0", "--no_tflite"]  # the seed already meets the target: no iteration
    assert main(argv) == 0
    capsys.readouterr()
    monkeypatch.setattr(loop, "fine_tune", _fail_if_training)  # from here on nothing is trained
    held = sorted(os.listdir(run))
    line = _one_error_line(main, argv + ["--alpha=0.75", "--arch=mnasnet_a1"], capsys)
    assert line == (f"mnas-netadapt: error: --run_dir {run} holds a seed trained with --arch=mnasnet_small, "
                    "--alpha=1.0, --seed_train_steps=0; received --arch=mnasnet_a1, --alpha=0.75 (use the same "
                    "flags, another directory, or --overwrite)")
    line = _one_error_line(main, argv[:1] + ["--seed_train_steps=5"] + argv[2:], capsys)
    assert line.endswith("received --seed_train_steps=5 (use the same flags, another directory, or --overwrite)")
    assert sorted(os.listdir(run)) == held
    assert main(argv) == 0  # the same flags still resume the finished run
    assert f"outputs in {run}: final.keras, blocks.json, summary.json, netadapt.png" in capsys.readouterr().out
    assert not os.path.exists(run / "final.tflite")  # --no_tflite: not written, and not announced
    # the same run as if it had used an external table: the run's own table is not written into it
    config = json.loads((run / "config.json").read_text())
    config["latency"] = {"source": "table", "input_size": 32, "table": str(tmp_path / "lut.json")}
    (run / "config.json").write_text(json.dumps(config))
    line = _one_error_line(main, argv[:2] + ["--latency=table"] + argv[3:], capsys)
    assert f"latency.table was '{tmp_path / 'lut.json'}', is now 'latency_table.json'" in line
    assert not os.path.exists(run / "latency_table.json")


def test_images_of_another_size_than_the_models_input_are_refused_before_the_run_is_created(main, tmp_path, capsys):
    """A --model fixed to 32x32 with --image_size=48 failed at the seed's first evaluation with
    Keras' shape message, after writing a run (config.json, journal, seed.keras) whose data
    definition then refused the corrected command."""
    import os

    import keras

    from mnas_keras.models import MnasNet
    from mnas_keras.search.errors import SearchConfigError
    from mnas_keras.search.netadapt.latency import MAddsLatency
    from mnas_keras.search.netadapt.loop import NetAdapt, NetAdaptConfig

    model = MnasNet(["r1_k3_s11_e1_i8_o8"], stem_filters=8, input_shape=(32, 32, 3), classes=10, head_filters=16)
    path = tmp_path / "seed32.keras"
    model.save(path)
    run = tmp_path / "run"
    line = _one_error_line(main, [f"--model={path}", "--image_size=48", f"--run_dir={run}", "--latency=madds"], capsys)
    assert line == (f"mnas-netadapt: error: --model {path} takes 32x32 images; received --image_size=48 (the "
                    "digits are resized to it): use --image_size=32")
    assert os.listdir(run) == []  # nothing that would refuse the corrected command
    data = ((np.zeros((4, 48, 48, 3), "float32"), np.zeros(4, "int32")),) * 2
    with pytest.raises(SearchConfigError, match=r"the data's images are \(48, 48, 3\); the model takes \(32, 32, 3\)"):
        NetAdapt(model, data, MAddsLatency(32), NetAdaptConfig(), str(tmp_path / "api_run"), log=None).run_loop()
    assert not os.path.exists(tmp_path / "api_run")
    keras.backend.clear_session()


def test_overwrite_deletes_a_run_stopped_between_its_seeds_training_and_its_journal(main, tmp_path, capsys):
    """A run killed after training its seed but before its journal holds only the trained
    seed, its flags and the run's table; --overwrite (which the refusal of other seed flags
    points to) refused it as 'no journal.jsonl', a dead end. It now deletes them and starts
    over (here: up to the seed's training)."""
    import json
    import os

    run = tmp_path / "run"
    run.mkdir()
    (run / "trained.keras").write_bytes(b"PK")
    (run / "trained.json").write_text(json.dumps({"arch": "mnasnet_small", "alpha": 1.0, "seed_train_steps": 0}))
    (run / "latency_table.json").write_text("{}")
    line = _one_error_line(main, [f"--run_dir={run}", "--alpha=0.75", "--latency=madds"], capsys)
    assert "holds a seed trained with --arch=mnasnet_small, --alpha=1.0, --seed_train_steps=0" in line
    with pytest.raises(AssertionError, match="the seed was trained"):  # past the deletion, training anew
        main([f"--run_dir={run}", "--alpha=0.75", "--latency=madds", "--overwrite"])
    assert [n for n in os.listdir(run) if not n.startswith(".") and n != "run.lock"] == []
    other = tmp_path / "notes"
    other.mkdir()
    (other / "trained.keras").write_bytes(b"PK")
    (other / "notes.txt").write_text("keep me")
    line = _one_error_line(main, [f"--run_dir={other}", "--latency=madds", "--overwrite"], capsys)
    assert "--overwrite deletes only a run directory" in line and (other / "notes.txt").read_text() == "keep me"


def test_final_check_of_an_external_table_run_times_at_the_tables_size_and_threads(tmp_path):
    """With --table, the networks are predicted at the table's input size and threads, and
    --latency_size is not used; the final network was nevertheless timed against the seed at
    --latency_size (96 by default, one thread), a ratio of other networks than the table's."""
    from mnas_keras.search.latency.table import LatencyTable
    from mnas_keras.search.netadapt.cli import parser, verify_source

    table = LatencyTable({"input_size": 160, "num_threads": 2})
    table.save(str(tmp_path / "lut.json"))
    args = parser().parse_args(["--latency=table", f"--table={tmp_path / 'lut.json'}"])
    assert args.latency_size == 96
    source = verify_source(LatencyTable.load(args.table, check=False))
    assert (source.input_size, source.num_threads) == (160, 2)
