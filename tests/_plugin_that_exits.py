"""A plugin module whose import calls sys.exit (it needs a GPU, say)."""

raise SystemExit("this plugin needs CUDA")
