"""The parts of the README and the docs site that a program writes from the files that measured them."""
