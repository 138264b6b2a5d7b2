"""Commands built on runs: the compatibility matrix, the docs' generated blocks, explore, export for ports without Python, the torch-versions page."""
