"""Entry points: parse settings, build the pipeline, execute."""
