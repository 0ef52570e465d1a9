"""data stage of the marketcast pipeline."""
