"""``python -m morphstudio`` runs the command-line interface."""
import sys

from morphstudio.cli import main

sys.exit(main())
