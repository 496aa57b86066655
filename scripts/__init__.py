"""Developer tools: the local stack behind `make run`, and the benchmark."""
