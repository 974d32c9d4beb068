import sys

from chatc.cli import main

sys.exit(main())
