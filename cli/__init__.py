"""The searchsim command line: thin commands that call `sim` and print or write."""
