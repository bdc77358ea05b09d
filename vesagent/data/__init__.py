"""Data files packaged with vesagent (see each folder's PROVENANCE.md)."""
