"""``process`` and ``batch`` share one set of stage options, checked before start-up and built one way."""

from __future__ import annotations

import pytest

from pipeline.cli.args import check_stage_arguments, stage_options
from pipeline.cli.main import build_parser
from pipeline.errors import ConfigError

PROCESS = ["process", "x.wav", "--session-id", "s1", "--client-id", "c1", "--therapist-id", "t1"]
BATCH = ["batch", "inbox"]
STAGE_ARGS = ["--asr-backend", "openai-whisper", "--asr-beam-size", "3", "--language", "auto",
              "--segmentation-step", "0.5", "--sequential"]


@pytest.mark.parametrize("command", [PROCESS, BATCH], ids=["process", "batch"])
def test_both_commands_build_the_same_stage_options(command: list[str]) -> None:
    args = build_parser().parse_args([*command, *STAGE_ARGS])
    check_stage_arguments(args)
    options = stage_options(args, keep_audio=True)
    t = options.transcribe
    assert (t.backend, t.beam_size, t.language, t.batch_size) == ("openai-whisper", 3, None, None)
    assert options.diarize.segmentation_step == 0.5 and options.overlap_stages is False


def test_defaults_are_the_products_defaults() -> None:
    from pipeline.engine.runtime import PipelineOptions

    for command in (PROCESS, BATCH):
        options = stage_options(build_parser().parse_args(command))
        assert options.transcribe == PipelineOptions().transcribe
        assert options.overlap_stages is PipelineOptions().overlap_stages
        assert options.transcribe.beam_size == 5  # issue #21: beam 5, the realistic bench's winner in budget
        greedy = stage_options(build_parser().parse_args([*command, "--asr-beam-size", "1"]))
        assert greedy.transcribe.beam_size == 1


@pytest.mark.parametrize("extra, message", [
    (["--device", "gpu"], "--device"),
    (["--segmentation-step", "1.5"], "--segmentation-step"),
    (["--asr-backend", "moonshine", "--asr-batch-size", "8"], "--asr-batch-size"),
    (["--asr-backend", "rover", "--asr-beam-size", "5"], "--asr-beam-size"),
    (["--asr-backend", "moonshine", "--asr-beam-size", "1"], "--asr-beam-size"),
])
@pytest.mark.parametrize("command", [PROCESS, BATCH], ids=["process", "batch"])
def test_bad_stage_options_are_refused_before_start_up(command: list[str], extra: list[str], message: str) -> None:
    args = build_parser().parse_args([*command, *extra])
    with pytest.raises(ConfigError, match=message):
        check_stage_arguments(args)


def test_rover_is_offered_on_both_commands() -> None:
    for command in (PROCESS, BATCH):
        args = build_parser().parse_args([*command, "--asr-backend", "rover"])
        check_stage_arguments(args)
        assert stage_options(args).transcribe.backend == "rover"
