import sys

from connectors.collector.cli import main

sys.exit(main(sys.argv[1:]))
