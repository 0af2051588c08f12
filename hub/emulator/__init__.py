"""A Hub-compatible server for tests, benchmarks and the demo (huggingface_hub talks to it over HTTP). It imports nothing else of `hub`."""
