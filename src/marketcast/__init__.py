"""marketcast: probabilistic forecasts for betting and trading markets, judged by the market."""

__version__ = "0.1.0"
