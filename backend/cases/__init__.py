"""Recovery cases: every risk signal becomes a case with a priority, a clock and a verified outcome."""
