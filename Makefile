# The two commands of the README: `make demo` (set up everything, process the sample session) and
# `make test`. Nothing here downloads model weights from a hub: they come from pinned registry packages.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export NUMBA_CACHE_DIR := $(CURDIR)/.numba_cache
export PYANNOTE_METRICS_ENABLED := 0
export HF_HUB_OFFLINE := 1
export ORT_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 180

DEMO_AUDIO := sample_audio/demo_session.flac

.PHONY: setup models demo lint test test-fast bench bench-long bench-duckdb bench-realistic bench-codes bench-codes-audio codes-model clean-demo

setup: $(STAMP) models

$(STAMP): pyproject.toml requirements.txt requirements-nodeps.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: the CPU wheel (a later unpinned resolve would pull a CUDA build)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.txt -c constraints.txt
	$(BIN)/pip install -q --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install -q --no-deps -e .
	# torchaudio's wheel is a CUDA build whose native libraries cannot load here; without them it
	# imports as pure Python and the parts pyannote.audio uses (kaldi fbank, resampling) work.
	rm -f $(VENV)/lib/python3*/site-packages/torchaudio/lib/*.so
	touch $(STAMP)

models: $(STAMP)
	$(BIN)/alliance models --prepare

demo: setup
	$(BIN)/alliance process $(DEMO_AUDIO) --session-id demo-001 --client-id demo-client \
		--therapist-id demo-therapist --recorded-on 2026-11-02 --db alliance.duckdb --reports-dir reports

# ruff, configured in pyproject.toml; `make test` runs it first
lint: setup
	$(BIN)/ruff check .

test: setup lint
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not integration"

bench: setup
	$(BIN)/python -m bench.bench_session

# docs/benchmarks.md: long renders (needs ../shared/data/annomi and flite; about 30 min on 2 cores)
bench-long: setup
	mkdir -p bench/results
	$(BIN)/python -m bench.bench_long --minutes 60 90 --configs ours \
		--markdown bench/results/long60_90.md > bench/results/long60_90.json
	$(BIN)/python -m bench.bench_long --minutes 1 10 --configs ours naive ours-sequential ours-seg0.5 ours-seg0.1 \
		--markdown bench/results/long10.md > bench/results/long10.json

# docs/realistic_bench.md: rooms, noise, overlaps and codecs on AnnoMI renders + pyannote's real sample
# (needs ../shared/data/annomi and flite; about 10 min on 2 cores for greedy against beam 5, the default, with the
# comparison table, +25 min for the front ends, +2 min for the room estimate, +4 min for the far-talker grid).
# Writes bench/results/realistic{,-frontends}.{json,md}, asr-error-kinds-check, expected_wer-check, room, far_talker.
bench-realistic: setup
	rm -f bench/results/realistic.transcripts.json  # decode afresh (the cache would reuse earlier transcripts)
	$(BIN)/python -m bench.bench_realistic --asr greedy beam5 --transcripts bench/results/realistic.transcripts.json
	$(BIN)/python -m bench.asr_error_kinds bench/results/realistic.transcripts.json --out asr-error-kinds-check
	$(BIN)/python -m bench.calibrate_expected_wer --result bench/results/realistic.json \
		--transcripts bench/results/realistic.transcripts.json --out expected_wer-check
	# issue #21: front ends (none / WPE / DeepFilterNet / both) against greedy, as documented; room estimate
	$(BIN)/python -m bench.bench_realistic --sessions 1 --conditions clean room-near room-far phone-amr \
		--asr greedy --front-end none wpe denoise wpe+denoise --out realistic-frontends
	$(BIN)/python -m bench.bench_room
	$(BIN)/python -m bench.bench_far_talker

# docs/process_codes.md: the shipped MI process coder scored once on the held-out AnnoMI test transcripts
# (gold text), with both baselines, expert-expert agreement and session summaries (needs ../shared/data/annomi;
# about 10 min on 2 cores, most of it encoding utterances the first time).
bench-codes: setup
	$(BIN)/python -m bench.bench_codes

# docs/process_codes.md, from audio: test transcripts rendered in the realistic bench's rooms and run through the
# product (needs ../shared/data/annomi and flite; about 30 min on 2 cores for the defaults).
bench-codes-audio: setup
	$(BIN)/python -m bench.bench_codes_audio

# Rebuild the shipped coder (pipeline/codes/artefacts/): model selection by cross-validation on train/dev only,
# then the fit (needs ../shared/data/annomi; the artefact's SHA-256 goes into its model card).
codes-model: setup
	$(BIN)/python -m evaluation.codes.select
	$(BIN)/python -m evaluation.codes.train

# docs/benchmarks.md: research queries on a synthetic database of 100,000 sessions (about 14 GB of memory)
bench-duckdb: setup
	mkdir -p bench/results
	$(BIN)/python -m bench.bench_duckdb_scale --sessions 100000 \
		--markdown bench/results/duckdb_100k.md > bench/results/duckdb_100k.json

clean-demo:
	rm -f alliance.duckdb alliance.duckdb.wal
	rm -rf reports
