"""surveil: the command line, the composition root of the pipeline."""
