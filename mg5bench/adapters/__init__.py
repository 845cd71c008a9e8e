"""Model adapters, one file per family; registered lazily in mg5bench.catalog."""
