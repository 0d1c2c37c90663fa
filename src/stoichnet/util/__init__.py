"""stoichnet.util: the lowest layer, knowing neither networks nor chemistry.

``checks``: one way to validate arguments (a wrong type -> ``TypeError``, a value out of
range -> ``ValueError``, the message quoting the name, the value and what is allowed).
``files``: the one atomic writer (temporary file, fsync, rename) that honours the umask.
``datafiles``: registered data files (data folder, user cache, download checked against
its SHA-256), shared by the composition and the image dataset registries.
``signals``: the one Ctrl-C helper (first press: stop gracefully; second: abort).
"""
