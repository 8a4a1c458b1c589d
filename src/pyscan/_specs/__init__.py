"""nmap-syntax specifications: targets (lazy, permuted, sharded), ports and the services table.

Pure code: nothing here opens a socket or resolves a name. Import from the submodules
(``pyscan._specs.targets``, ``.permutation``, ``.ports``, ``.services``); the public names
are re-exported by :mod:`pyscan`.
"""
