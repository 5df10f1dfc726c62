"""``python -m pidgin_cli``: the same as the ``pidgin`` console script."""

from pidgin_cli._main import main

if __name__ == "__main__":
    main()
