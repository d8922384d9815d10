import sys

from lmms_nb.cli import program_main

sys.exit(program_main())
