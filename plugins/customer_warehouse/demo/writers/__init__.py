"""Source writers: each turns simulated customers into one source's files, in that source's own shape."""
