"""`python -m healthhut` runs the CLI."""

from healthhut.cli.main import main

main()
