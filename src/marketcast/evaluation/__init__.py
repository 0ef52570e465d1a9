"""evaluation stage of the marketcast pipeline."""
