"""datasets stage of the marketcast pipeline."""
