"""The report: figures, sample tables, report.md and its prose."""
