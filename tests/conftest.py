"""Top-level test configuration: shared fixtures and helpers come in as plugins, so no test
imports this file (importing it as a module breaks when pytest runs from another directory).
Helpers: `from hdtest import ...` (the hdtest package beside this file)."""

import os
import sys

# tests/ on the path whatever the working directory or import mode, so `hdtest` resolves
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

pytest_plugins = ["hdtest.plugin", "hadirector.lab.testing"]

