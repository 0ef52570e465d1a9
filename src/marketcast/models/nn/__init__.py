"""models nn stage of the marketcast pipeline."""
