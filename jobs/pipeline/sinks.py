"""Where the job's lines go: a part-file directory per kind, committed at checkpoints."""

from __future__ import annotations

from pathlib import Path

__all__ = ["file_sink"]


def file_sink(path: Path):
    from pyflink.common.serialization import Encoder
    from pyflink.datastream.connectors.file_system import (
        BucketAssigner,
        FileSink,
        OutputFileConfig,
        RollingPolicy,
    )

    return (
        FileSink.for_row_format(str(path), Encoder.simple_string_encoder())
        .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner())
        .with_rolling_policy(RollingPolicy.on_checkpoint_rolling_policy())
        .with_output_file_config(
            OutputFileConfig.builder().with_part_prefix("part").with_part_suffix(".jsonl").build()
        )
        .build()
    )
