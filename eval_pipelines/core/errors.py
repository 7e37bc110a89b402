"""Errors the user can fix by changing their input: the CLI maps these to exit code 2."""


class InvalidInputError(ValueError):
    """Bad input from the user (a file, an id, a request); the message names the field and the problem."""


class InvalidRequestError(InvalidInputError):
    """Every problem of a request at once, one `field: problem` per line."""

    title = "invalid request"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{self.title}:\n  " + "\n  ".join(problems))
