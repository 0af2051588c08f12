import sys

from lineage.cli.main import main

sys.exit(main())
