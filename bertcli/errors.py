"""Typed exceptions: the only things the CLI turns into exit codes."""

from __future__ import annotations


class BertcliError(Exception):
    """A user-facing problem: one line saying what was found, what was expected, what to do."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None, setting: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # The config key that would fix the problem (data.text_column): each command words the
        # hint with its own way to set it (--text-column, or --set data.text_column=...).
        self.setting = setting

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(BertcliError):
    """A recipe or command-line override is invalid."""


class DataError(BertcliError):
    """An input file or dataset is missing, unreadable or malformed."""


class ModelError(BertcliError):
    """A model could not be found, loaded or saved."""
