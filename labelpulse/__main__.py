import sys

from labelpulse.cli import main

sys.exit(main())
