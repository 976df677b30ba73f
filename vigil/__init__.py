"""The `vigil` command. Importing it first thing chooses Arrow's Parquet memory pool (see collector.memory)."""

from collector.memory import choose_arrow_pool

choose_arrow_pool()
