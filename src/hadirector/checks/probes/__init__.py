"""One module per check kind; each registers its probe with `@register(name)` (checks/base.py
imports every module here the first time a probe is looked up). Helpers shared by the probes
live in modules whose name starts with `_`."""
