"""What is checked: the cases, the tolerances, the comparison, the default selection."""
