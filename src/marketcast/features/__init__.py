"""features stage of the marketcast pipeline."""
