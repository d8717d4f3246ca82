"""The scaling study: its models against keras.applications and the papers, incremental
and resumable output, the ratio table and the command's errors."""

import json

import pytest


def test_study_models_match_keras_applications_and_published_madds():
    import keras

    from mnas_keras.models import profile
    from mnas_keras.search.scaling import build

    # keras.applications is an independent implementation of the same networks.
    v2 = build("mobilenet_v2", 1.0, 224)
    assert v2.count_params() == keras.applications.MobileNetV2(weights=None).count_params() == 3_538_984
    small = build("mobilenet_v3_small", 0.75, 224)
    peer = keras.applications.MobileNetV3Small(alpha=0.75, weights=None, include_preprocessing=False)
    assert small.count_params() == peer.count_params()
    # MnasNet paper: A1 312M multiply-adds, 3.9M parameters.
    a1 = profile(build("mnasnet_a1", 1.0, 224))
    assert (round(a1.madds / 1e6), round(a1.params / 1e5) / 10) == (312, 3.9)


def test_study_is_incremental_and_resumes(tmp_path):
    from mnas_keras.search.scaling import ScalingStudy

    def study(sizes):
        return ScalingStudy(str(tmp_path), ["mobilenet_v3_small"], [0.35], sizes, int8=False,
                            anchor=("mobilenet_v3_small", 0.35, 32), runs=4, rounds=2, warmup=1, log=None,
                            accuracy={("mobilenet_v3_small", 0.35): lambda size: size / 100})

    first = study([32]).run()
    assert [r["key"] for r in first] == ["mobilenet_v3_small@0.35@32"]
    assert first[0]["accuracy"] == 0.32 and first[0]["int8_ms"] is None
    both = study([32, 40]).run()  # the measured point is kept, only the new one is measured
    assert [r["key"] for r in both] == ["mobilenet_v3_small@0.35@32", "mobilenet_v3_small@0.35@40"]
    assert both[0] == first[0]
    lines = (tmp_path / "points.csv").read_text().splitlines()
    assert lines[0] == "arch,alpha,size,params,madds,fp32_ms,int8_ms,accuracy" and len(lines) == 3
    assert json.loads((tmp_path / "anchor.json").read_text())["anchor"] == "mobilenet_v3_small@0.35@32"
    assert (tmp_path / "accuracy_vs_latency.png").stat().st_size > 0


def test_ratio_table_puts_published_pixel1_latencies_next_to_ours():
    from mnas_keras.search.scaling import ratio_table

    records = [
        {"arch": "mobilenet_v2", "alpha": 1.0, "size": 224, "params": 3.5e6, "madds": 300e6, "fp32_ms": 20.0,
         "int8_ms": 10.0},
        {"arch": "mobilenet_v2", "alpha": 1.4, "size": 224, "params": 6e6, "madds": 585e6, "fp32_ms": 30.0},
        {"arch": "mnasnet_a1", "alpha": 1.0, "size": 224, "params": 3.9e6, "madds": 312e6, "fp32_ms": 25.0,
         "int8_ms": None},
        {"arch": "mnasnet_a1", "alpha": 0.5, "size": 128, "params": 1e6, "madds": 1e6, "fp32_ms": 1.0},
    ]
    lines = ratio_table(records).splitlines()
    # MnasNet paper: A1 78 ms on Pixel 1, 1.8x faster than MobileNetV2 1.4.
    assert lines[2] == "| mnasnet_a1 | 1 | 3.90M | 312M | 25.00 | - | 1.00 | 78.0 | 1.00 |"
    assert lines[3] == "| mobilenet_v2 | 1 | 3.50M | 300M | 20.00 | 10.00 | 0.80 | - | - |"
    assert lines[4] == "| mobilenet_v2 | 1.4 | 6.00M | 585M | 30.00 | - | 1.20 | 140.4 | 1.80 |"
    assert len(lines) == 5  # the 128-pixel point is not in the 224 table


def test_cli_errors_are_one_line_with_exit_2(capsys):
    from mnas_keras.search.scaling import main

    with pytest.raises(SystemExit) as info:
        main(["--widths=0.5,x"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mnas-scaling: error:") and "0.5,x" in err[0]
    with pytest.raises(SystemExit) as info:
        main(["--archs=mnasnet_zz", "--out=/tmp/unused"])
    assert info.value.code == 2 and "mnasnet_zz" in capsys.readouterr().err
