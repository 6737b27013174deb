"""The run's timing record: minutes and peak memory per stage, the total, and the machine they were measured on."""

from __future__ import annotations

import json

from alignflow.timing import write_timing


def test_timing_records_each_stage_the_total_and_the_cpu(tmp_path):
    path = tmp_path / "metrics" / "timing.json"
    stages = {
        "sft": {"seconds": 90.0, "ran": True, "peak_rss_bytes": 3 * 2**30},
        "reward": {"seconds": 1.2, "ran": False},
    }
    write_timing(stages, 95.4, path)
    timing = json.loads(path.read_text())
    assert timing["stage_minutes"] == {"sft": 1.5, "reward": 0.02} and timing["total_minutes"] == 1.59
    assert timing["ran"] == {"sft": True, "reward": False}
    assert timing["stage_peak_rss_gb"] == {"sft": 3.0} and timing["peak_rss_gb"] == 3.0  # a skipped stage used none
    assert timing["cpu"] and timing["cores"] >= 1 and isinstance(timing["native_bf16"], bool)
