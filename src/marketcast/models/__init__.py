"""models stage of the marketcast pipeline."""
