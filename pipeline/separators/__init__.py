"""Separators: every system of the evaluation grid and of `enhance` behind one protocol.

`base` (the protocol: `System`, `Mixtures` -> `Separation`, `Metadata`, `WindowSeparator`, `Kind`),
`registry` (kind name -> `Kind`), one module per family: `vae` (forward and inverse inference, the streaming
masker), `references` (oracle mask, unprocessed mixture).
"""
