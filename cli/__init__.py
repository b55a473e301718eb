"""The `flywheel` command: on top of every package, imported by none (`cli.main`)."""
