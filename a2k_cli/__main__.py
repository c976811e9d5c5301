from a2k_cli.cli import main

main()
