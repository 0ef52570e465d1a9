"""labels stage of the marketcast pipeline."""
