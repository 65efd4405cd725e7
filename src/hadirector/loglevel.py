"""NOTICE: syslog's level between info and warning, which Python's logging does not name. Lines
an operator should see without being alarmed use it: a group's new owner, a real coming up, a
debug level changed by a signal. daemon/logsetup.py maps it to syslog's notice and the
journal's PRIORITY 5."""

import logging

NOTICE = 25
logging.addLevelName(NOTICE, "NOTICE")
