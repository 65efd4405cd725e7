from ._operator import register_operator


def register(sub) -> None:
    register_operator(sub, "standby", "give this node's resource groups to the peer")
