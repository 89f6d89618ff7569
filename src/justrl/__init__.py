"""justrl: the JustRL recipe (plain GRPO for math reasoning) as a toolkit."""

__version__ = "0.1.0"
