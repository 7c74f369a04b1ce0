import sys

from layerkit.cli.app import main

sys.exit(main())
