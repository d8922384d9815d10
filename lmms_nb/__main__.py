import sys

from lmms_nb.cli import main

sys.exit(main())
