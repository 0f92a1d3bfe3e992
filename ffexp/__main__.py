"""``python -m ffexp`` and the ``ffexp`` console script: ffexp.launch.main.main."""

import sys

from ffexp.launch.main import main

if __name__ == "__main__":
    sys.exit(main())
