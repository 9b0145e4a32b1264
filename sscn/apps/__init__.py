"""What a user runs: colorize, demo, gallery, the k / r explorer, figures, and the ``sscn`` command."""
