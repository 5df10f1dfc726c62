"""``python -m pidgin_load``: the same as the ``pidgin-load`` console script."""

import sys

from pidgin_load._cli import main

if __name__ == "__main__":
    sys.exit(main())
