"""Examples for the how-to guides and the tutorial (run with the other examples)."""
