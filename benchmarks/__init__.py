"""callmeter's benchmark suite: speed and memory as ratios measured side by side in one run."""
