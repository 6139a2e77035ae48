"""The benchmark scripts under bench/ run: the DuckDB scale benchmark on a small database, a short long-render."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from bench import bench_duckdb_scale, bench_long, render_long


def test_duckdb_scale_times_every_query_on_200_sessions(tmp_path: Path) -> None:
    doc = bench_duckdb_scale.bench(200, repeats=1, work_dir=tmp_path, log=False)
    assert doc["rows"]["sessions"] == 200
    assert doc["rows"]["indicators"] == 200 * len(bench_duckdb_scale.indicator_catalogue())
    assert doc["rows"]["self_report_scores"] > 0
    names = [q["name"] for q in doc["queries"]]
    assert len(names) == len(set(names))
    for prefix in ("view:indicators_wide", "view:session_indicators_self_report", "view:client_series",
                   "readme:", "client:trajectory_sql", "compare:run_comparison", "client:client_trajectories",
                   "research:", "export:"):
        assert any(n.startswith(prefix) for n in names), prefix
    for q in doc["queries"]:
        assert "error" not in q, q
        assert isinstance(q["median_s"], float) and math.isfinite(q["median_s"]) and q["median_s"] >= 0, q
    assert doc["errors"] == []
    json.dumps(doc, default=str)
    table = bench_duckdb_scale.markdown(doc)
    assert all(f"`{n}`" in table for n in names)


def test_duckdb_scale_select_adds_the_steps_a_compare_step_needs() -> None:
    items = [bench_duckdb_scale.Query(n, "", "df", "SELECT 1") for n in
             ("view:a", "compare:load", "compare:paired", "compare:correlation_table", "compare:run_comparison")]
    chosen = [q.name for q in bench_duckdb_scale.select(items, only=["correlation"], skip=["run_comparison"])]
    assert chosen == ["compare:load", "compare:paired", "compare:correlation_table"]
    assert [q.name for q in bench_duckdb_scale.select(items, skip=["compare:"])] == ["view:a"]


def test_bench_long_ratios_and_configs() -> None:
    rows = [{"minutes": 10.0, "config": "ours", "total_s": 100.0, "rtf_without_model_load": 0.1, "peak_rss_mb": 1000},
            {"minutes": 10.0, "config": "naive", "total_s": 400.0, "rtf_without_model_load": 0.4,
             "peak_rss_mb": 1500},
            {"minutes": 60.0, "config": "ours", "total_s": 600.0, "rtf_without_model_load": 0.1, "peak_rss_mb": 1200}]
    assert bench_long.ratios(rows) == [{"minutes": 10.0, "total_s": 4.0, "rtf_without_model_load": 4.0,
                                        "peak_rss_mb": 1.5}]
    assert {"ours", "ours-sequential", "naive"} <= set(bench_long.CONFIGS)


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")
def test_render_long_short_session_truth_matches_audio(tmp_path: Path) -> None:
    spec = render_long.LongSpec(minutes=0.3)
    r = render_long.render_long(spec, out_dir=tmp_path, log=False)
    assert not r.cached
    lengths = render_long.check_render(r)
    assert lengths["audio_samples"] == lengths["truth_samples"]
    assert lengths["last_utterance_end_s"] + render_long.TAIL_S == pytest.approx(lengths["duration_s"])
    assert abs(lengths["duration_s"] - 18.0) < 15.0
    assert r.rttm.read_text().count("SPEAKER") >= 2
    again = render_long.render_long(spec, out_dir=tmp_path, log=False)
    assert again.cached and again.audio == r.audio


def test_bench_long_naive_is_pyannote_and_whisper_defaults() -> None:
    ours = bench_long.pipeline_options(bench_long.CONFIGS["ours"])
    naive = bench_long.pipeline_options(bench_long.CONFIGS["naive"])
    assert (naive.transcribe.backend, naive.overlap_stages) == ("openai-whisper", False)
    assert (naive.diarize.segmentation_step, naive.diarize.embedding_scope) == (0.1, "chunk")
    assert naive.transcribe.piece_s is None  # the whole file in one call, as openai-whisper does
    assert (ours.transcribe.backend, ours.overlap_stages, ours.diarize.embedding_scope) == ("faster-whisper", True,
                                                                                           "file")
    on_gpu = bench_long.pipeline_options(bench_long.CONFIGS["ours"], device="cuda:1")
    assert (on_gpu.transcribe.device, on_gpu.transcribe.device_index, on_gpu.diarize.device) == ("cuda", 1, "cuda:1")
    assert on_gpu.overlap_stages and ours.transcribe.device == "cpu"


def test_duckdb_scale_baseline_run_gets_the_options_but_its_own() -> None:
    argv = ["--sessions", "100", "--baseline", "HEAD~1", "--only", "compare:", "--markdown=out.md", "--repeats", "1"]
    rest = bench_duckdb_scale._drop_option(bench_duckdb_scale._drop_option(argv, "--baseline"), "--markdown")
    assert rest == ["--sessions", "100", "--only", "compare:", "--repeats", "1"]


def test_bench_results_are_written_as_json_and_markdown(tmp_path, capsys):
    from bench.results_io import write_results

    write_results("x", {"a": 1, "p": Path("p")}, "| t |\n", results=tmp_path / "r")
    assert json.loads((tmp_path / "r" / "x.json").read_text()) == {"a": 1, "p": "p"}
    assert (tmp_path / "r" / "x.md").read_text() == "| t |\n" and "| t |" in capsys.readouterr().out
