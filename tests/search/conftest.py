"""Shared setup of the search tests: the small space most of them search, a run's journal,
and the consistency every finished run must have.

The helpers are plain functions (also importable as ``from conftest import ...`` where a
module-level value needs them, e.g. a driver script's text); ``small_space`` is a fixture.
"""

import os

import pytest

#: Three stages, 2 x 2 x 2 x 2 x 2 = 32 architectures: repeats are common, so caching is exercised.
SMALL_SPACE = {
    "name": "small",
    "stem_filters": 16,
    "defaults": {"kernel": [3, 5], "op": ["dsconv", "mbconv_e3"]},
    "stages": ["r1_k3_s11_e1_i16_o16_dsconv", {"reference": "r2_k3_s22_e3_i16_o24", "filters": [1.0, 1.5]},
               {"reference": "r1_k3_s22_e6_i24_o40", "fixed": True}],
}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def small_space():
    from mnas_keras.search.space import SearchSpace

    return SearchSpace.from_dict(SMALL_SPACE)


def journal_records(run_dir):
    """The records of ``run_dir``'s journal."""
    from mnas_keras.search.run.journal import Journal

    return Journal(os.path.join(str(run_dir), "journal.jsonl")).records


def check_consistent(run_dir, num_samples):
    """Every step sampled once and finished exactly once, each result after its sample;
    returns the journal's records."""
    records = journal_records(run_dir)
    sampled = [r["step"] for r in records if r["event"] == "sample"]
    finished = [r["step"] for r in records if r["event"] == "result"]
    assert sorted(finished) == list(range(num_samples))
    assert sorted(sampled) == list(range(num_samples))
    seen = set()
    for record in records:
        if record["event"] == "sample":
            seen.add(record["step"])
        elif record["event"] == "result":
            assert record["step"] in seen
    return records
