"""splits stage of the marketcast pipeline."""
