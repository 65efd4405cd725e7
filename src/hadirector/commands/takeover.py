from ._operator import register_operator


def register(sub) -> None:
    register_operator(sub, "takeover", "take resource groups from the peer onto this node")
