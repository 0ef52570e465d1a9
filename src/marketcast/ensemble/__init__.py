"""ensemble stage of the marketcast pipeline."""
