"""The benchmark suite (`make bench`): synthetic networks of several sizes, measured in one
run; results in bench/results/ (Markdown table and JSON)."""
