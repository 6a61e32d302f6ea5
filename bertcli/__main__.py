"""`python -m bertcli` (and `accelerate launch -m bertcli`) entry point."""

from bertcli.cli import main

if __name__ == "__main__":
    main()
