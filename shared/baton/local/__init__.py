"""Local development: the dev server and the embedded services behind ``make run``."""
