"""One module per ``morphstudio`` subcommand; each exposes ``register(subparsers)``."""

DEVICE_HELP = "auto (default: CUDA when present, else CPU), cpu, cuda, cuda:N, mps"
"""Help text of every command's ``--device`` option."""
