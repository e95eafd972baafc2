"""What both models share and neither owns: config checks, runs, sweeps, caches, vectors, text.

Layering: ``callbacks`` imports Lightning only; ``lit_common`` may import ``callbacks``; each model
package imports ``lit_common`` and ``callbacks``, never the other model.
"""
