"""training stage of the marketcast pipeline."""
