"""個人住民税 (individual resident tax): rules as code over dated parameters, one vectorised
engine (NumPy) for a whole population or a single taxpayer, municipal settings, the calculator
(CLI, API, public simulation page) and the annual assessment.

Layers (import-linter): ``parameters`` and ``model`` (pure) → ``engine`` (NumPy) →
``store`` → ``service`` → ``api`` | ``pages`` | ``cli``. See docs/tax.md.
"""
