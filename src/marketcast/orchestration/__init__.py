"""orchestration stage of the marketcast pipeline."""
