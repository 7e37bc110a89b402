"""Errors the user can fix by changing their input: the CLI maps these to exit code 2."""


class InvalidInputError(ValueError):
    """Bad input from the user (a file, an id, a request); the message names the field and the problem."""
