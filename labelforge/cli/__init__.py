"""The ``labelforge`` command line (Typer). Command modules stay light: heavy imports happen inside bodies."""
