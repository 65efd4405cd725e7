"""bench/peers: hadirector beside heartbeat 3, keepalived and HAProxy (run: python bench/peers)."""

import os
import sys

_SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)
