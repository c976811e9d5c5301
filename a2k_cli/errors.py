"""The base of a2k's own errors: messages written for users, printed whole on one line."""


class A2KError(Exception):
    """An error whose message a2k wrote (a path, then what is wrong with it)."""
