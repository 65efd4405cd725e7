import os
import shutil

import pytest

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def need_root(*commands: str):
    """Skip (with the reason) unless root and the named commands exist."""
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces / nftables")
    for c in commands:
        if shutil.which(c) is None and not os.path.exists(c):
            pytest.skip(f"needs {c} (installed by `make test` as root)")
