"""``python -m exports.receiver``: the same as ``neuron receiver``."""

from exports.receiver.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
