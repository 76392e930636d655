"""callmeter's benchmark suite: speed and memory as ratios measured side by side in one run."""

import pricing

pricing.install()  # benchmarks open ledgers in-process: an entry point like the CLI
