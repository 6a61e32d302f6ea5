"""Data: readers for local files, split loading, windowing and batching."""
