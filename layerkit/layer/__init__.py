"""What a built layer is and says: its manifest, its SBOM, what any ZIP contains.

Both wings read layers; this package imports neither of them.
"""
