"""unidrop's generic backend: mask stream v1 on any array of the Python Array API standard.

The registry asks it only after every specific backend (NumPy, PyTorch, JAX, CuPy, ...) declined
an array; it computes with the standard's operations alone, through ``array-api-compat``.
"""
