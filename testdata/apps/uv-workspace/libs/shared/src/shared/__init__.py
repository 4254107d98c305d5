"""A library shared by the workspace's apps."""

from markupsafe import escape


def greeting() -> str:
    return str(escape("hello from shared"))
