"""`python -m service.cli`: the same command line as the `fedirelay` script."""

from service.cli.commands import main

main()
