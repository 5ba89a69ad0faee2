"""Curation: deduplication, supersession, decay, pruning, history, forget and export."""

from ._write import WritePolicy, WriteResult, write_learning

__all__ = ["WritePolicy", "WriteResult", "write_learning"]
