"""The base of a2k's own errors, and the one-line summary of anybody's."""


class A2KError(Exception):
    """An error whose message a2k wrote (a path, then what is wrong with it)."""


def first_line(exc: BaseException) -> str:
    """A library's error in one line: its message's first line, or its type's name when the
    message is empty."""
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]
