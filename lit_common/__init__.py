"""What both models share and neither owns (issue 10's shared core; it grows as pieces move here).

Layering: ``callbacks`` imports Lightning only; ``lit_common`` may import ``callbacks``; each model
package imports ``lit_common`` and ``callbacks``, never the other model.
"""
