"""The fault tests' table of counts, one row per case, printed after the session's results
(each test prints its own row too, shown when it fails)."""

from tests.faults.counting import summary_lines


def pytest_terminal_summary(terminalreporter):
    lines = summary_lines()
    if lines:
        terminalreporter.section("fault cases: counts")
        for line in lines:
            terminalreporter.write_line(line)
