"""Renderers: the text the commands print, as pure functions of plain data (no socket, no clock
unless passed in). Each module is named for what it renders:

  lvs.py      `hadirector lvs`: ipvsadm -L tables and their JSON, and the control reply they read
  checks.py   `hadirector lvs --checks`: one line per real server's health check
  cluster.py  `hadirector status`: nodes, links, groups and owners
  table.py    the left-aligned column table the views share

Only commands/ and daemon/ use them; nothing below the daemon imports this package.
"""
