"""The data plane: a Toxiproxy-compatible fault proxy engine on asyncio.

``toxics`` holds the pure toxic logic; this package is its I/O shell: proxies and their
listeners (`proxy`, `tcp`), connections and links (`connection`), the toxic chains that
links run (`chain`), the named collection the API manages (`collection`) and the
Toxiproxy HTTP API itself (`api`).
"""
