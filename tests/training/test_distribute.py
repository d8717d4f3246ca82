"""MirroredStrategy over two logical CPUs equals one device on the same global batch."""



def test_mirrored_two_logical_cpus_equals_one_device(mirrored_results):
    # Logical devices must exist before TensorFlow initializes: a fresh process, shared with
    # the detection and segmentation comparisons (tests/training/_mirrored_checks.py).
    r = mirrored_results["classification"]
    # Same global batch, loss / global batch, summed gradients, synchronized batch norm: equal
    # to float tolerance, first with plain SGD and no clipping (a loss divided by the
    # per-replica batch would double every step), then with the recipe's RMSProp, clipping of
    # the cross-replica gradient sum and EMA.
    for variant in ("plain", "clipped"):
        v = r[variant]
        assert v["replicas"] == [1, 2]
        tolerance = 1e-5 * max(1.0, v["max_weight"])
        assert v["moved"] > 20 * tolerance, (variant, v)  # the steps are far above the tolerance
        assert v["weight_diff"] <= tolerance, (variant, v)
        assert v["ema_diff"] <= tolerance, (variant, v)
        one, mirrored = v["train_loss"]
        assert abs(one - mirrored) <= 1e-5 * abs(one), (variant, v)
        assert v["eval"][0]["examples"] == v["eval"][1]["examples"] == 32
        assert abs(v["eval"][0]["loss"] - v["eval"][1]["loss"]) <= 1e-5 * abs(v["eval"][0]["loss"])
        assert v["eval"][0]["accuracy"] == v["eval"][1]["accuracy"]
    # Per-replica batch norm: the moving statistics stay identical on both replicas.
    assert r["bn_stats_count"] > 0 and r["bn_stats_max"] > 0
    assert r["bn_stats_replica_gap"] == 0.0
