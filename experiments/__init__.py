"""End-to-end experiments reproducing discoveries, with interpretability reports."""
