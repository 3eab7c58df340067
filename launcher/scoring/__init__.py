"""Torch-free scoring both halves share: entities and IOB2, output parsing, metrics, bench tables.

The launcher imports it in-process (`launch score`, `launch bench`); jobs import it on the node.
"""
