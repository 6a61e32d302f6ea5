"""Encoders with task heads, and saving/loading them as Hugging Face directories."""
