"""An interrupted latency-table build keeps what it measured and resumes with the rest.

Found by a new user's pass: ``mnas-latency-table --all_parts`` (about 8 minutes for the
MnasNet space at 224) saved the table only after every part was timed, so an interruption
lost all of it.
"""

import pytest

from mnas_keras.search.latency.table import LatencyTable

KEYS = ["stem:32x32x3>8", "block:16x16:r1_k3_s11_e1_i8_o8_dsconv", "head:16x16x8"]


class Interrupted(Exception):
    pass


def test_saved_group_by_group_then_resumed(tmp_path):
    path = str(tmp_path / "lut.json")
    table = LatencyTable.create(32, stem_filters=8, runs=2, warmup=0, anchor=None)
    table.path = path
    timed = []

    def log(line):  # stops the build as the second group's timing ends, before its save
        if line.startswith("timed"):
            timed.append(line)
            if len(timed) == 2:
                raise Interrupted

    with pytest.raises(Interrupted):
        table.measure_parts(KEYS, log=log, save_every=1)
    saved = LatencyTable.load(path)
    assert set(saved.part_latencies) == {KEYS[0]}  # the first group survived
    timed.clear()
    measured = saved.measure_parts(KEYS, log=timed.append, save_every=1)
    assert sorted(measured) == sorted(KEYS[1:])  # only the rest is measured again
    assert set(LatencyTable.load(path).part_latencies) == set(KEYS)
    assert LatencyTable.load(path).part_latencies[KEYS[0]] == saved.part_latencies[KEYS[0]]


def test_save_every_is_checked():
    table = LatencyTable.create(32, stem_filters=8, anchor=None)
    with pytest.raises(ValueError, match="save_every must be an integer >= 1; received 0"):
        table.measure_parts(KEYS, save_every=0)


def test_load_of_a_directory_is_a_latency_table_error(tmp_path):
    from mnas_keras.search.latency.table import LatencyTableError

    with pytest.raises(LatencyTableError, match=f"latency table file {tmp_path} cannot be read: Is a directory"):
        LatencyTable.load(str(tmp_path))


def test_prepare_table_checks_its_folder_before_calibrating(tmp_path):
    from mnas_keras.search.latency.modes import prepare_table
    from mnas_keras.search.latency.table import LatencyTableError
    from mnas_keras.search.space import mnasnet_space

    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    # the folder is a file: refused at once, not after timing the calibration networks
    with pytest.raises(LatencyTableError, match=f"latency table {a_file}/t.json: its folder {a_file} cannot be "
                                                "created"):
        prepare_table(str(a_file / "t.json"), mnasnet_space(), input_size=32)
