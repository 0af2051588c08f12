"""The lab: a generated model zoo with known truth, synthetic signatures, baselines, evaluation and the demo. The product never imports it."""
